package agent

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
)

func TestProbe(t *testing.T) {
	u, err := url.Parse(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if r := Probe(context.Background(), u.Host, 5*time.Second); r.Stage != "" || !strings.HasPrefix(r.String(), "ok: ") {
		t.Fatalf("the test broker: %v", r)
	}
	if r := Probe(context.Background(), "no-such-host.invalid:5672", 5*time.Second); r.Stage != ProbeResolve {
		t.Errorf("an unknown name: %v", r)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	address := closed.Addr().String()
	closed.Close()
	if r := Probe(context.Background(), address, 5*time.Second); r.Stage != ProbeConnect {
		t.Errorf("a closed port: %v", r)
	}
	// Something that listens but is no broker: it answers the header with other bytes.
	other, _ := net.Listen("tcp", "127.0.0.1:0")
	defer other.Close()
	go func() {
		conn, err := other.Accept()
		if err == nil {
			conn.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			conn.Close()
		}
	}()
	if r := Probe(context.Background(), other.Addr().String(), 5*time.Second); r.Stage != ProbeAMQP {
		t.Errorf("a web server: %v", r)
	}
}
