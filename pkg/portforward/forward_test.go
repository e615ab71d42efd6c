package portforward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	portforwardconst "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientportforward "k8s.io/client-go/tools/portforward"
	streamhttp "k8s.io/streaming/pkg/httpstream"
	streamspdy "k8s.io/streaming/pkg/httpstream/spdy"
)

const (
	forwardPath      = "/api/v1/namespaces/work/pods/rabbitmq-0/portforward"
	podRefusedDetail = "error forwarding port 5672 to pod rabbitmq-0: failed to connect to localhost:5672 inside namespace work: connection refused"
	testTimeout      = 10 * time.Second
)

var testTarget = Target{Namespace: testNamespace, Pod: "rabbitmq-0", Port: 5672}

// fakeAPIServer plays the API server's pods/portforward subresource and the kubelet behind it: it
// speaks SPDY (the original protocol) and, when webSockets is set, SPDY tunnelled over WebSocket
// (API servers from 1.30). Each data stream is served by an echoing "pod", or refused.
type fakeAPIServer struct {
	t          *testing.T
	webSockets bool
	// refuseWebSocketsWith is the status an old API server answers a WebSocket upgrade with.
	refuseWebSocketsWith int
	forbidden            bool
	podRefuses           bool

	server         *httptest.Server
	wsAttempts     atomic.Int32
	spdyAttempts   atomic.Int32
	mu             sync.Mutex
	conns          []streamhttp.Connection
	requestedPorts []string
}

func newFakeAPIServer(t *testing.T, configure func(*fakeAPIServer)) *fakeAPIServer {
	t.Helper()
	s := &fakeAPIServer{t: t, refuseWebSocketsWith: http.StatusBadRequest}
	if configure != nil {
		configure(s)
	}
	s.server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(func() {
		s.dropConnections()
		s.server.Close()
	})
	return s
}

func (s *fakeAPIServer) config() *rest.Config {
	return &rest.Config{Host: s.server.URL}
}

func (s *fakeAPIServer) client(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(s.config())
	if err != nil {
		t.Fatalf("kubernetes.NewForConfig: %v", err)
	}
	return client
}

func writeStatus(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`,
		message, reason, code)
}

const forbiddenMessage = `pods "rabbitmq-0" is forbidden: User "jane" cannot create resource "pods/portforward" in API group "" in the namespace "work"`

func (s *fakeAPIServer) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != forwardPath {
		writeStatus(w, http.StatusNotFound, "NotFound", "unexpected path "+req.URL.Path)
		return
	}
	if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		s.wsAttempts.Add(1)
		switch {
		case s.forbidden:
			writeStatus(w, http.StatusForbidden, "Forbidden", forbiddenMessage)
		case !s.webSockets:
			writeStatus(w, s.refuseWebSocketsWith, "BadRequest", "unable to upgrade: the server does not tunnel SPDY over WebSocket")
		default:
			s.serveWebSocket(w, req)
		}
		return
	}
	s.spdyAttempts.Add(1)
	if req.Method != http.MethodPost {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "port-forward over SPDY is a POST")
		return
	}
	if s.forbidden {
		writeStatus(w, http.StatusForbidden, "Forbidden", forbiddenMessage)
		return
	}
	if _, err := streamhttp.Handshake(req, w, []string{clientportforward.PortForwardProtocolV1Name}); err != nil {
		return
	}
	conn := streamspdy.NewResponseUpgrader().UpgradeResponse(w, req, s.handleStream)
	if conn != nil {
		s.keep(conn)
	}
}

func (s *fakeAPIServer) serveWebSocket(w http.ResponseWriter, req *http.Request) {
	upgrader := gwebsocket.Upgrader{Subprotocols: []string{portforwardconst.WebsocketsSPDYTunnelingPortForwardV1}}
	wsConn, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		s.t.Errorf("fake API server: WebSocket upgrade: %v", err)
		return
	}
	tunnel := clientportforward.NewTunnelingConnection("server", wsConn)
	conn, err := streamspdy.NewServerConnection(tunnel, s.handleStream)
	if err != nil {
		s.t.Errorf("fake API server: SPDY over WebSocket: %v", err)
		return
	}
	s.keep(conn)
}

func (s *fakeAPIServer) keep(conn streamhttp.Connection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, conn)
}

// dropConnections is the API server going away (or the pod's node, or a proxy timing out).
func (s *fakeAPIServer) dropConnections() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
}

func (s *fakeAPIServer) ports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requestedPorts...)
}

// handleStream is the kubelet's side: an error stream and a data stream per forwarded connection.
func (s *fakeAPIServer) handleStream(stream streamhttp.Stream, replySent <-chan struct{}) error {
	headers := stream.Headers()
	go func() {
		<-replySent
		switch headers.Get(corev1.StreamType) {
		case corev1.StreamTypeError:
			if s.podRefuses {
				io.WriteString(stream, podRefusedDetail)
			}
			stream.Close()
		case corev1.StreamTypeData:
			s.mu.Lock()
			s.requestedPorts = append(s.requestedPorts, headers.Get(corev1.PortHeader))
			s.mu.Unlock()
			if !s.podRefuses {
				io.Copy(stream, stream) // the echoing "pod"
			}
			stream.Close()
		}
	}()
	return nil
}

func forward(t *testing.T, api *fakeAPIServer, opts ...Option) *Session {
	t.Helper()
	// The context bounds the whole session, not only its start: cancel it only at the end.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	session, err := Forward(ctx, api.config(), api.client(t), testTarget, opts...)
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	t.Cleanup(session.Close)
	return session
}

func webSocketsOff(name string) string {
	if name == WebSocketsEnv {
		return "false"
	}
	return ""
}

func noEnv(string) string { return "" }

// roundTrip sends a message through the forward and reads the echo back.
func roundTrip(t *testing.T, addr, message string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, message); err != nil {
		t.Fatalf("write: %v", err)
	}
	conn.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(got, []byte(message)) {
		t.Fatalf("echo = %q, want %q", got, message)
	}
}

func assertLocalAddr(t *testing.T, session *Session) {
	t.Helper()
	host, port, err := net.SplitHostPort(session.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<chosen port>", session.Addr())
	}
}

func TestForwardFallsBackToSPDYWhenWebSocketsAreRefused(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.refuseWebSocketsWith = status })
			session := forward(t, api, WithGetenv(noEnv))
			assertLocalAddr(t, session)

			roundTrip(t, session.Addr(), "hello over SPDY\n")
			if got := api.wsAttempts.Load(); got != 1 {
				t.Errorf("WebSocket attempts = %d, want 1 (WebSocket is tried first)", got)
			}
			if got := api.spdyAttempts.Load(); got != 1 {
				t.Errorf("SPDY attempts = %d, want 1 (the fallback)", got)
			}
			if got := api.ports(); len(got) != 1 || got[0] != "5672" {
				t.Errorf("pod ports requested = %v, want [5672]", got)
			}
		})
	}
}

func TestForwardOverWebSockets(t *testing.T) {
	api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.webSockets = true })
	session := forward(t, api, WithGetenv(noEnv))
	assertLocalAddr(t, session)

	// Two connections, one after the other: the forward serves more than one while the pod answers.
	roundTrip(t, session.Addr(), "hello over WebSocket\n")
	roundTrip(t, session.Addr(), strings.Repeat("x", 256*1024))
	if got := api.wsAttempts.Load(); got != 1 {
		t.Errorf("WebSocket attempts = %d, want 1", got)
	}
	if got := api.spdyAttempts.Load(); got != 0 {
		t.Errorf("SPDY attempts = %d, want 0 (no fallback needed)", got)
	}
}

func TestForwardWebSocketsOptOutSkipsWebSockets(t *testing.T) {
	api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.webSockets = true })
	session := forward(t, api, WithGetenv(webSocketsOff))

	roundTrip(t, session.Addr(), "hello\n")
	if got := api.wsAttempts.Load(); got != 0 {
		t.Errorf("WebSocket attempts = %d, want 0 with %s=false", got, WebSocketsEnv)
	}
	if got := api.spdyAttempts.Load(); got != 1 {
		t.Errorf("SPDY attempts = %d, want 1", got)
	}
}

func TestWebSocketsEnabled(t *testing.T) {
	for value, want := range map[string]bool{"": true, "true": true, "false": false, "FALSE": false, "0": true} {
		got := webSocketsEnabled(func(name string) string {
			if name == WebSocketsEnv {
				return value
			}
			return ""
		})
		if got != want {
			t.Errorf("%s=%q: WebSockets enabled = %v, want %v (kubectl only disables on \"false\")", WebSocketsEnv, value, got, want)
		}
	}
}

func TestForwardForbidden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		getenv func(string) string
	}{{"websocket then spdy", noEnv}, {"spdy only", webSocketsOff}} {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.forbidden = true })
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			session, err := Forward(ctx, api.config(), api.client(t), testTarget, WithGetenv(tt.getenv))
			if err == nil {
				session.Close()
				t.Fatal("Forward succeeded against a server that forbids pods/portforward")
			}
			if !errors.Is(err, ErrForbidden) {
				t.Errorf("errors.Is(%v, ErrForbidden) = false", err)
			}
			var forbidden *ForbiddenError
			if !errors.As(err, &forbidden) || forbidden.Namespace != "work" || forbidden.Pod != "rabbitmq-0" {
				t.Errorf("errors.As ForbiddenError: got %+v", forbidden)
			}
			for _, s := range []string{"create pods/portforward", `namespace "work"`, "cannot create resource"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestForwardOtherUpgradeFailureIsNotForbidden(t *testing.T) {
	api := newFakeAPIServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	target := testTarget
	target.Pod = "gone-0" // the fake server answers 404 for any other pod
	_, err := Forward(ctx, api.config(), api.client(t), target, WithGetenv(noEnv))
	if err == nil {
		t.Fatal("Forward succeeded for a pod the server does not know")
	}
	if errors.Is(err, ErrForbidden) {
		t.Errorf("a 404 reported as forbidden: %v", err)
	}
	if !strings.Contains(err.Error(), "gone-0") {
		t.Errorf("error %q does not name the pod", err)
	}
}

func TestSessionLostWhenTheServerDropsTheConnection(t *testing.T) {
	for _, webSockets := range []bool{false, true} {
		t.Run(fmt.Sprintf("websockets=%v", webSockets), func(t *testing.T) {
			api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.webSockets = webSockets })
			session := forward(t, api, WithGetenv(noEnv))
			roundTrip(t, session.Addr(), "before the drop\n")
			select {
			case <-session.Lost():
				t.Fatal("Lost fired before anything went wrong")
			default:
			}
			if err := session.Err(); err != nil {
				t.Fatalf("Err() = %v on a live session", err)
			}

			api.dropConnections()
			select {
			case <-session.Lost():
			case <-time.After(testTimeout):
				t.Fatal("Lost did not fire after the server dropped the connection")
			}
			err := session.Err()
			if !errors.Is(err, ErrLost) || !errors.Is(err, clientportforward.ErrLostConnectionToPod) {
				t.Errorf("Err() = %v, want ErrLost wrapping ErrLostConnectionToPod", err)
			}
			if !strings.Contains(err.Error(), "rabbitmq-0") || !strings.Contains(err.Error(), "retry") {
				t.Errorf("Err() = %q, want it to name the pod and say to retry", err)
			}
			// The listener went with the forward: a caller's dial fails fast instead of hanging.
			if conn, err := net.DialTimeout("tcp", session.Addr(), time.Second); err == nil {
				conn.Close()
				t.Errorf("the local port still accepts connections after the forward was lost")
			}
		})
	}
}

func TestSessionLostWhenThePodRefusesAConnection(t *testing.T) {
	// client-go v0.37.2 ends the whole forward when the pod side reports an error for one connection
	// (here: the broker not listening yet); Err must carry the pod's own words.
	api := newFakeAPIServer(t, func(s *fakeAPIServer) { s.podRefuses = true })
	session := forward(t, api, WithGetenv(noEnv))

	conn, err := net.DialTimeout("tcp", session.Addr(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	select {
	case <-session.Lost():
	case <-time.After(testTimeout):
		t.Fatal("Lost did not fire after the pod refused a connection")
	}
	err = session.Err()
	if !errors.Is(err, ErrLost) {
		t.Errorf("Err() = %v, want ErrLost", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Err() = %q, want the pod's reason (connection refused)", err)
	}
}

func TestSessionCloseIsIdempotentAndNotALoss(t *testing.T) {
	api := newFakeAPIServer(t, nil)
	var diagnostics bytes.Buffer
	var diagnosticsMu sync.Mutex
	session := forward(t, api, WithGetenv(noEnv), WithDiagnostics(lockedWriter{&diagnostics, &diagnosticsMu}))
	roundTrip(t, session.Addr(), "hi\n")

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(session.Close)
	}
	wg.Wait()
	session.Close()

	select {
	case <-session.Lost():
		t.Error("Lost fired after Close: Close is not a loss")
	default:
	}
	if err := session.Err(); err != nil {
		t.Errorf("Err() = %v after Close, want nil", err)
	}
	if conn, err := net.DialTimeout("tcp", session.Addr(), time.Second); err == nil {
		conn.Close()
		t.Error("the local port still accepts connections after Close")
	}
	diagnosticsMu.Lock()
	defer diagnosticsMu.Unlock()
	if !strings.Contains(diagnostics.String(), "Forwarding from 127.0.0.1:") {
		t.Errorf("WithDiagnostics did not receive the forwarder's chatter, got %q", diagnostics.String())
	}
}

func TestSessionLostWhenTheContextIsCancelled(t *testing.T) {
	api := newFakeAPIServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	session, err := Forward(ctx, api.config(), api.client(t), testTarget, WithGetenv(noEnv))
	if err != nil {
		t.Fatalf("Forward: %v", err)
	}
	defer session.Close()
	cancel()
	select {
	case <-session.Lost():
	case <-time.After(testTimeout):
		t.Fatal("Lost did not fire after the context was cancelled")
	}
	if err := session.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
