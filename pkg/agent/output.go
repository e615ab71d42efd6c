package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// resultFileName is the name of the result file in its private directory.
const resultFileName = "result"

// resultCapture collects the output of one run of the command for its record, with results on:
// the file the command may write to $WORKQUEUE_RESULT_FILE, in a private directory made for
// this item alone, and the end of its standard output.
type resultCapture struct {
	dir  string
	size int
	tail *tailBuffer
}

// newResultCapture makes the item's private directory in the temporary directory, or else
// beside the agent's executable: in a Job's pod that is the emptyDir the agent was copied to,
// writable where a read-only root file system leaves no /tmp. Without either, the command gets
// no result file and the record holds the end of its output; err says why.
func newResultCapture(size int) (*resultCapture, error) {
	c := &resultCapture{size: size, tail: &tailBuffer{size: size}}
	var errs []error
	for _, parent := range resultDirParents() {
		dir, err := os.MkdirTemp(parent, "workqueue-result-")
		if err == nil {
			c.dir = dir
			return c, nil
		}
		errs = append(errs, err)
	}
	return c, fmt.Errorf("no result file for the command, only the end of its output, since no directory for it can be made: %w", errors.Join(errs...))
}

func resultDirParents() []string {
	parents := []string{os.TempDir()}
	if self, err := os.Executable(); err == nil {
		parents = append(parents, filepath.Dir(self))
	}
	return parents
}

// file is the path the command gets in $WORKQUEUE_RESULT_FILE; "" when there is none.
func (c *resultCapture) file() string {
	if c.dir == "" {
		return ""
	}
	return filepath.Join(c.dir, resultFileName)
}

// stdout returns what the command's standard output goes to: out, as without results, and the
// tail kept for the record.
func (c *resultCapture) stdout(out io.Writer) io.Writer {
	return &teeWriter{out: out, tail: c.tail}
}

// collect puts the command's output into run: the first bytes of the result file when the
// command wrote one, else the last bytes of its standard output. It removes the directory.
func (c *resultCapture) collect(run *commandResult) error {
	var data []byte
	var truncated bool
	err := error(os.ErrNotExist)
	if c.dir != "" {
		defer os.RemoveAll(c.dir)
		data, truncated, err = readHead(c.file(), c.size)
	}
	switch {
	case err == nil:
		run.output, run.outputFrom, run.outputTruncated = data, outcome.OutputFromFile, truncated
		return nil
	case errors.Is(err, os.ErrNotExist):
		err = nil
	default:
		err = fmt.Errorf("cannot read the result file $%s, so the record holds the end of the command's output: %w", "WORKQUEUE_RESULT_FILE", err)
	}
	run.output, run.outputTruncated = c.tail.bytes()
	run.outputFrom = outcome.OutputFromStdout
	return err
}

// readHead reads up to size bytes from the start of a file, and whether it holds more.
func readHead(path string, size int) ([]byte, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(size)+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > size {
		return data[:size], true, nil
	}
	return data, false, nil
}

// teeWriter passes the command's output on and keeps its end.
type teeWriter struct {
	out  io.Writer
	tail *tailBuffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.tail.Write(p)
	return w.out.Write(p)
}

// tailBuffer keeps the last size bytes written to it, in at most twice that much memory.
type tailBuffer struct {
	mu    sync.Mutex
	size  int
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.size {
		t.buf = append(t.buf[:0], p[len(p)-t.size:]...)
		return
	}
	if len(t.buf)+len(p) > 2*t.size {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.size:]...)
	}
	t.buf = append(t.buf, p...)
}

// bytes returns the last size bytes written, and whether more were written before them.
func (t *tailBuffer) bytes() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := t.buf
	if len(data) > t.size {
		data = data[len(data)-t.size:]
	}
	return append([]byte(nil), data...), t.total > int64(len(data))
}
