package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
)

type queueSpec struct {
	quorum        bool
	deliveryLimit int // quorum only; 0 for none
	// maxAttemptsOne: x-delivery-limit 0, as `fill --max-attempts 1` declares (quorum only).
	maxAttemptsOne bool
}

// testQueue declares a fresh durable queue (and, for a quorum queue, its .failed queue) the way
// pkg/queue does; testbroker removes both when the test ends.
func testQueue(t testing.TB, spec queueSpec) string {
	t.Helper()
	name := testbroker.QueueName(t, "agent")
	failed := name + ".failed"
	ch := testbroker.Channel(t)
	defer ch.Close()
	args := amqp.Table{}
	if spec.quorum {
		args["x-queue-type"] = "quorum"
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = failed
		if spec.deliveryLimit > 0 {
			args["x-delivery-limit"] = spec.deliveryLimit
		}
		if spec.maxAttemptsOne {
			args["x-delivery-limit"] = 0
		}
		if _, err := ch.QueueDeclare(failed, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			t.Fatalf("declare %s: %v", failed, err)
		}
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatalf("declare %s: %v", name, err)
	}
	return name
}

type message = testbroker.Message

// eventuallyReady waits (generously: the machine is shared) until the queue holds want ready
// messages; a message released by a closed connection takes a moment to be counted again.
func eventuallyReady(t testing.TB, queue string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := testbroker.Ready(t, queue)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s has %d ready messages, want %d", queue, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that the agent and the command's output copiers can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testRun is one agent run in the background with its output captured.
type testRun struct {
	log     *syncBuffer
	output  *syncBuffer
	signals chan os.Signal
	done    chan Result
}

// startAgent runs the agent in the background. Unset fields of cfg get test defaults: the test
// broker, a termination log in a temporary directory, short idle and empty waits.
func startAgent(t testing.TB, cfg Config) *testRun {
	t.Helper()
	if cfg.BrokerURL == "" {
		cfg.BrokerURL = testbroker.URL(t)
	}
	if cfg.TerminationLog == "" {
		cfg.TerminationLog = filepath.Join(t.TempDir(), "termination-log")
	}
	if cfg.Idle == 0 {
		cfg.Idle = time.Second
	}
	r := &testRun{
		log:     &syncBuffer{},
		output:  &syncBuffer{},
		signals: make(chan os.Signal, 1),
		done:    make(chan Result, 1),
	}
	cfg.Log = io.MultiWriter(r.log, testLogWriter{t})
	cfg.Stdout, cfg.Stderr = r.output, r.output
	cfg.Signals = r.signals
	go func() { r.done <- Run(cfg) }()
	return r
}

func (r *testRun) wait(t testing.TB) Result {
	t.Helper()
	select {
	case result := <-r.done:
		return result
	case <-time.After(2 * time.Minute):
		t.Fatalf("the agent did not finish within 2 minutes; log so far:\n%s", r.log.String())
		return Result{}
	}
}

func runAgent(t testing.TB, cfg Config) (Result, *testRun) {
	t.Helper()
	r := startAgent(t, cfg)
	return r.wait(t), r
}

// testLogWriter shows the agent's log lines in the test output (with -v or on failure).
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// waitForFile waits until a command signals progress by creating path.
func waitForFile(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within a minute", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutProxy forwards TCP connections to the broker and can cut them all, to simulate the
// broker or the network going away under a connected agent, without touching the broker that
// other tests share. Down, it also refuses new connections, as a Service without a ready broker
// pod does; up, it listens again on the same address. With logins dropped, it closes each
// connection once the client has sent its credentials, as a broker going down or starting up may.
type cutProxy struct {
	addr   string
	target string

	mu         sync.Mutex
	listener   net.Listener // nil while down
	conns      []*proxiedConn
	dropLogins bool
	held       chan struct{} // closed to let held replies go; nil while none are held
}

// proxiedConn is one client connection and its connection to the broker. Frames to the broker
// are written whole under mu, so that closeChannel can slip a frame in between two of them.
type proxiedConn struct {
	proxy          *cutProxy
	client, server net.Conn
	mu             sync.Mutex
	keepServer     atomic.Bool // the client side was cut alone: leave the broker's side open
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &cutProxy{addr: listener.Addr().String(), target: target, listener: listener}
	t.Cleanup(p.down)
	go p.serve(listener)
	return p
}

// proxiedBroker returns the test broker's URL through a new cutProxy, and the proxy.
func proxiedBroker(t testing.TB) (string, *cutProxy) {
	t.Helper()
	u, err := url.Parse(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.addr
	return u.String(), proxy
}

func (p *cutProxy) serve(listener net.Listener) {
	for {
		client, err := listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxiedConn{proxy: p, client: client, server: server}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go func() {
			_ = c.forwardFrames()
			if !c.keepServer.Load() {
				server.Close()
			}
		}()
		go func() { c.forwardReplies(); client.Close() }()
	}
}

// forwardReplies copies what the broker sends to the client, waiting while replies are held.
func (c *proxiedConn) forwardReplies() {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			c.proxy.mu.Lock()
			held := c.proxy.held
			c.proxy.mu.Unlock()
			if held != nil {
				<-held
			}
			if _, err := c.client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forwardFrames copies the client's protocol header, then its frames one by one, to the broker.
func (c *proxiedConn) forwardFrames() error {
	header := make([]byte, 8) // "AMQP" 0 0 9 1
	if _, err := io.ReadFull(c.client, header); err != nil {
		return err
	}
	if err := c.write(header); err != nil {
		return err
	}
	for {
		frameHeader := make([]byte, 7) // type, channel, payload size
		if _, err := io.ReadFull(c.client, frameHeader); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(frameHeader[3:])
		frame := make([]byte, 7+int(size)+1) // and the frame-end octet
		copy(frame, frameHeader)
		if _, err := io.ReadFull(c.client, frame[7:]); err != nil {
			return err
		}
		isStartOk := frame[0] == 1 && size >= 4 && binary.BigEndian.Uint16(frame[7:]) == 10 && binary.BigEndian.Uint16(frame[9:]) == 11
		if isStartOk && c.proxy.droppingLogins() {
			c.client.Close()
			return errors.New("login dropped")
		}
		if err := c.write(frame); err != nil {
			return err
		}
	}
}

func (c *proxiedConn) write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.server.Write(b)
	return err
}

// holdReplies stops passing on what the broker sends, a confirm for instance, until the next cut.
func (p *cutProxy) holdReplies() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// cut closes every proxied connection, dropping any held replies; new ones are still accepted.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
	for _, c := range p.conns {
		c.client.Close()
		c.server.Close()
	}
	p.conns = nil
}

// cutClientSide closes the client's side of every proxied connection but leaves the broker's
// open and silent, as a network that fails between them without the broker hearing of it: the
// broker holds what the connection held until it misses the client's heartbeats.
func (p *cutProxy) cutClientSide() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.keepServer.Store(true)
		c.client.Close()
	}
}

// down cuts every proxied connection and refuses new ones until up.
func (p *cutProxy) down() {
	p.mu.Lock()
	if p.listener != nil {
		p.listener.Close()
		p.listener = nil
	}
	p.mu.Unlock()
	p.cut()
}

func (p *cutProxy) droppingLogins() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropLogins
}

// up accepts connections again, on the same address, and lets logins through.
func (p *cutProxy) up(t testing.TB) {
	t.Helper()
	p.listen(t, false)
}

// upDroppingLogins accepts connections again, but closes each at the login.
func (p *cutProxy) upDroppingLogins(t testing.TB) {
	t.Helper()
	p.listen(t, true)
}

func (p *cutProxy) listen(t testing.TB, dropLogins bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLogins = dropLogins
	if p.listener != nil {
		return
	}
	listener, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.listener = listener
	go p.serve(listener)
}

// closeChannel has the broker close channel 1 of every proxied connection, the consumer's, while
// the connection stays up: what RabbitMQ does to a consumer past its consumer_timeout. It sends
// a basic.ack of a delivery tag the broker never used, which the broker answers with
// channel.close 406 PRECONDITION_FAILED.
func (p *cutProxy) closeChannel(t testing.TB) {
	t.Helper()
	payload := binary.BigEndian.AppendUint16(nil, 60)    // class basic
	payload = binary.BigEndian.AppendUint16(payload, 80) // method ack
	payload = binary.BigEndian.AppendUint64(payload, 1<<40)
	payload = append(payload, 0) // not multiple
	frame := []byte{1, 0, 1}     // a method frame on channel 1
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(append(frame, payload...), 0xCE)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		t.Fatal("closeChannel: no proxied connection")
	}
	for _, c := range p.conns {
		if err := c.write(frame); err != nil {
			t.Logf("closeChannel: %v", err)
		}
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
