package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientportforward "k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/klog/v2"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// WebSocketsEnv is kubectl's opt-out: "false" makes the forward use SPDY only, as kubectl does.
const WebSocketsEnv = "KUBECTL_PORT_FORWARD_WEBSOCKETS"

// Option adjusts a Forward.
type Option func(*options)

type options struct {
	getenv      func(string) string
	diagnostics io.Writer
}

// WithGetenv replaces os.Getenv for reading KUBECTL_PORT_FORWARD_WEBSOCKETS (tests, or a caller that
// resolved its environment already).
func WithGetenv(getenv func(string) string) Option {
	return func(o *options) { o.getenv = getenv }
}

// WithDiagnostics sends the forwarder's chatter ("Forwarding from ...", "Handling connection ...") and
// the errors it logs to w, for a --verbose mode. By default they are discarded; errors still reach Err.
func WithDiagnostics(w io.Writer) Option {
	return func(o *options) { o.diagnostics = w }
}

// Session is a live forward from 127.0.0.1:<os-chosen port> to the target.
type Session struct {
	target Target
	addr   string
	stop   context.CancelFunc
	done   chan struct{} // closed when the forwarder goroutine has ended
	lost   chan struct{}

	mu      sync.Mutex
	closing bool
	err     error
}

// Addr is the local address to dial, "127.0.0.1:NNNNN".
func (s *Session) Addr() string { return s.addr }

// Target is what the session forwards to.
func (s *Session) Target() Target { return s.target }

// Lost is closed when the forward ends for any reason other than Close: a lost connection, the pod
// gone, the context given to Forward cancelled. One failed connection through the forward ends it
// (client-go's forwarder closes the whole stream connection), so a caller that retries builds a new
// Session.
func (s *Session) Lost() <-chan struct{} { return s.lost }

// Err says why the forward ended once Lost is closed (matching ErrLost unless the context was
// cancelled), and is nil before that or after Close.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the forward and waits for the forwarder to end. It is idempotent and safe to call
// concurrently.
func (s *Session) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stop()
	<-s.done
}

// Forward starts a forward and returns once the local listener is bound (ready != broker accepting:
// callers retry their dial).
//
// ctx bounds the whole session, not only its start (like exec.CommandContext): cancelling it ends
// the forward and fires Lost with the context's error. Close the session when done with it.
func Forward(ctx context.Context, config *rest.Config, client kubernetes.Interface, target Target, opts ...Option) (*Session, error) {
	o := options{getenv: os.Getenv, diagnostics: io.Discard}
	for _, opt := range opts {
		opt(&o)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The same URL kubectl port-forward builds: POST .../namespaces/NS/pods/POD/portforward.
	forwardURL := client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(target.Namespace).Name(target.Pod).SubResource("portforward").URL()

	recorder := newErrorRecorder(o.diagnostics)
	logger := klog.New(recorder)
	dialer, err := newDialer(logger, http.MethodPost, forwardURL, config, webSocketsEnabled(o.getenv))
	if err != nil {
		return nil, fmt.Errorf("preparing the port-forward to %s: %w", target, err)
	}
	dialed := &dialRecorder{delegate: dialer}

	forwardCtx, stop := context.WithCancel(klog.NewContext(ctx, logger))
	ready := make(chan struct{})
	forwarder, err := clientportforward.NewOnAddressesForStreamingWithContext(forwardCtx, dialed,
		[]string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(int(target.Port))}, ready, o.diagnostics, o.diagnostics)
	if err != nil {
		stop()
		return nil, fmt.Errorf("preparing the port-forward to %s: %w", target, err)
	}

	ended := make(chan error, 1)
	go func() { ended <- forwarder.ForwardPorts() }()

	select {
	case <-ready:
	case err := <-ended:
		stop()
		return nil, dialError(target, dialed.lastError(), err)
	case <-ctx.Done():
		stop()
		// The dial itself does not watch the context; the forwarder ends on its own once it returns.
		return nil, fmt.Errorf("starting the port-forward to %s: %w", target, ctx.Err())
	}

	ports, err := forwarder.GetPorts()
	if err == nil && len(ports) != 1 {
		err = fmt.Errorf("%d ports forwarded, want 1", len(ports))
	}
	if err != nil {
		stop()
		<-ended
		return nil, fmt.Errorf("port-forward to %s: reading the local port: %w", target, err)
	}

	s := &Session{
		target: target,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))),
		stop:   stop,
		done:   make(chan struct{}),
		lost:   make(chan struct{}),
	}
	go s.watch(ctx, ended, recorder)
	return s, nil
}

// watch turns the end of the forwarder into Lost/Err, unless Close asked for it.
func (s *Session) watch(ctx context.Context, ended <-chan error, recorder *errorRecorder) {
	defer close(s.done)
	err := <-ended
	s.stop()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	switch {
	case ctx.Err() != nil:
		s.err = fmt.Errorf("port-forward to %s stopped: %w", s.target, context.Cause(ctx))
	default:
		if err == nil {
			err = clientportforward.ErrLostConnectionToPod
		}
		s.err = &LostError{Target: s.target, Detail: recorder.cause(), Cause: err}
	}
	close(s.lost)
}

func webSocketsEnabled(getenv func(string) string) bool {
	// Same test as kubectl's cmdutil.PortForwardWebsockets.IsDisabled: only "false" disables.
	return strings.ToLower(getenv(WebSocketsEnv)) != "false"
}

// newDialer mirrors kubectl v0.37.2's createDialer: SPDY-over-WebSocket first, plain SPDY when the
// server refuses the WebSocket upgrade. The predicate must come from k8s.io/streaming: with the
// ...ForStreaming constructors the errors are that module's UpgradeFailureError.
func newDialer(logger klog.Logger, method string, u *url.URL, config *rest.Config, webSockets bool) (streamhttp.Dialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(config)
	if err != nil {
		return nil, err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, method, u)
	if !webSockets {
		return dialer, nil
	}
	tunnelingDialer, err := clientportforward.NewSPDYOverWebsocketDialerForStreamingWithLogger(logger, u, config)
	if err != nil {
		return nil, err
	}
	return clientportforward.NewFallbackDialerForStreaming(tunnelingDialer, dialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	}), nil
}

// dialRecorder keeps the typed error of the last dial: ForwardPorts flattens it into a string.
type dialRecorder struct {
	delegate streamhttp.Dialer
	mu       sync.Mutex
	err      error
}

func (d *dialRecorder) Dial(protocols ...string) (streamhttp.Connection, string, error) {
	conn, protocol, err := d.delegate.Dial(protocols...)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return conn, protocol, err
}

func (d *dialRecorder) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// dialError explains why the forward never came up. dialErr is the dialer's own error when the
// upgrade failed; forwardErr is what ForwardPorts returned.
func dialError(target Target, dialErr, forwardErr error) error {
	cause := forwardErr
	if dialErr != nil {
		cause = dialErr
	}
	if isForbidden(cause) {
		return &ForbiddenError{Namespace: target.Namespace, Pod: target.Pod, Cause: cause}
	}
	return fmt.Errorf("starting the port-forward to %s: %w", target, cause)
}

// isForbidden recognises a 403 from either transport: the WebSocket dialer keeps the API status, the
// SPDY dialer only its message ("pods "x" is forbidden: User ... cannot create resource ...").
func isForbidden(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsForbidden(err) {
		return true
	}
	var upgradeErr *streamhttp.UpgradeFailureError
	if errors.As(err, &upgradeErr) && apierrors.IsForbidden(upgradeErr.Cause) {
		return true
	}
	return strings.Contains(err.Error(), " is forbidden: ") || strings.Contains(err.Error(), "403 Forbidden")
}
