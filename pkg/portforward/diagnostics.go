package portforward

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"k8s.io/klog/v2"
)

// errorRecorder is the forwarder's logger. client-go reports the pod's answer on a failed connection
// ("failed to connect to localhost:5672 inside namespace ...") only as a log line before it closes the
// whole forward; keeping it lets Err say why, without printing on the user's terminal.
type errorRecorder struct {
	out io.Writer

	mu         sync.Mutex
	first      string // the first error logged
	firstFatal string // the first error of the kind after which client-go closes the forward
}

// closesForward says whether client-go logs msg for an error after which it closes the forward.
func closesForward(msg string) bool {
	switch msg {
	case "An error occurred forwarding", "Error reading from error stream":
		return true
	}
	return false
}

var _ klog.LogSink = (*errorRecorder)(nil)

func newErrorRecorder(out io.Writer) *errorRecorder {
	return &errorRecorder{out: out}
}

func (r *errorRecorder) Init(klog.RuntimeInfo) {}

// Enabled lets only unconditional (V(0)) messages through: the verbose ones are client-go's tracing.
func (r *errorRecorder) Enabled(level int) bool { return level == 0 }

func (r *errorRecorder) Info(_ int, msg string, keysAndValues ...any) {
	r.write("", nil, msg, keysAndValues)
}

func (r *errorRecorder) Error(err error, msg string, keysAndValues ...any) {
	r.mu.Lock()
	if err != nil {
		text := strings.TrimSpace(err.Error())
		if r.first == "" {
			r.first = text
		}
		if r.firstFatal == "" && closesForward(msg) {
			r.firstFatal = text
		}
	}
	r.mu.Unlock()
	r.write("error: ", err, msg, keysAndValues)
}

func (r *errorRecorder) WithValues(...any) klog.LogSink { return r }

func (r *errorRecorder) WithName(string) klog.LogSink { return r }

// cause is the error that most likely ended the forward: client-go closes it on the first connection
// the pod side reports an error for, so prefer that one over, say, a local client's reset.
func (r *errorRecorder) cause() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstFatal != "" {
		return r.firstFatal
	}
	return r.first
}

func (r *errorRecorder) write(prefix string, err error, msg string, keysAndValues []any) {
	if r.out == io.Discard {
		return
	}
	line := prefix + msg
	if err != nil {
		line += ": " + err.Error()
	}
	for i := 0; i+1 < len(keysAndValues); i += 2 {
		line += fmt.Sprintf(" %v=%v", keysAndValues[i], keysAndValues[i+1])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.out, line)
}
