// Command agentfloor measures the floor for the agent's drain rate in Go: the agent's hot loop
// stripped to what amqp-consume does, on one locked OS thread with blocking system calls and a
// hand-written AMQP 0-9-1 consumer (prefetch 1, ack after exit 0, one process per item, no
// amqp091-go, no goroutines on the path). It is a measuring stick for BENCHMARKS.md, not a
// client: no TLS, virtual hosts, heartbeats, reconnects, timeouts or signals.
//
//	agentfloor amqp://guest:guest@127.0.0.1:5672 QUEUE COUNT COMMAND [ARG...]
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "agentfloor: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 4 {
		return fmt.Errorf("usage: agentfloor URL QUEUE COUNT COMMAND [ARG...]")
	}
	brokerURL, err := url.Parse(args[0])
	if err != nil {
		return fmt.Errorf("broker URL: %w", err)
	}
	queue := args[1]
	count, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	command := args[3:]
	path, err := exec.LookPath(command[0])
	if err != nil {
		return err
	}

	// One thread does everything, as amqp-consume's one thread does.
	runtime.LockOSThread()
	tcp, err := net.Dial("tcp", brokerURL.Host)
	if err != nil {
		return err
	}
	socket, err := tcp.(*net.TCPConn).File() // a blocking duplicate: reads block this thread
	tcp.Close()
	if err != nil {
		return err
	}
	c := &conn{r: bufio.NewReaderSize(socket, 64<<10), w: socket}
	password, _ := brokerURL.User.Password()
	if err := c.open(brokerURL.User.Username(), password, queue); err != nil {
		return fmt.Errorf("opening the consumer: %w", err)
	}

	env := append(os.Environ(), "WORKQUEUE_QUEUE="+queue)
	for done := 0; done < count; done++ {
		tag, body, err := c.delivery()
		if err != nil {
			return err
		}
		var stdin [2]int
		if err := syscall.Pipe2(stdin[:], syscall.O_CLOEXEC); err != nil {
			return err
		}
		_, _ = syscall.Write(stdin[1], body) // items here are short: they fit in the pipe
		syscall.Close(stdin[1])
		pid, err := syscall.ForkExec(path, command, &syscall.ProcAttr{
			Env:   append(env[:len(env):len(env)], "WORKQUEUE_MESSAGE_ID="+strconv.Itoa(done)),
			Files: []uintptr{uintptr(stdin[0]), os.Stdout.Fd(), os.Stderr.Fd()},
			Sys:   &syscall.SysProcAttr{Setpgid: true},
		})
		syscall.Close(stdin[0])
		if err != nil {
			return err
		}
		var status syscall.WaitStatus
		for {
			if _, err = syscall.Wait4(pid, &status, 0, nil); err != syscall.EINTR {
				break
			}
		}
		if err != nil || status.ExitStatus() != 0 {
			return fmt.Errorf("item %d: the command failed (%v, status %v)", done, err, status)
		}
		if err := c.send(frameMethod, 1, method(60, 80, binary.BigEndian.AppendUint64(nil, tag), []byte{0})); err != nil {
			return err
		}
	}
	return nil
}

const (
	frameMethod    = 1
	frameHeader    = 2
	frameHeartbeat = 8
)

type conn struct {
	r *bufio.Reader
	w io.Writer
}

func (c *conn) open(user, password, queue string) error {
	if _, err := c.w.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	steps := []struct {
		send                  []byte
		channel               uint16
		replyClass, replyName uint16
	}{
		{nil, 0, 10, 10}, // connection.start
		{method(10, 11, u32(0), shortstr("PLAIN"), longstr("\x00"+user+"\x00"+password), shortstr("en_US")), 0, 10, 30},
		{method(10, 31, u16(1), u32(131072), u16(0)), 0, 0, 0},
		{method(10, 40, shortstr("/"), shortstr(""), []byte{0}), 0, 10, 41},
		{method(20, 10, shortstr("")), 1, 20, 11},
		{method(60, 10, u32(0), u16(1), []byte{0}), 1, 60, 11},
		{method(60, 20, u16(0), shortstr(queue), shortstr(""), []byte{0}, u32(0)), 1, 60, 21},
	}
	for _, step := range steps {
		if step.send != nil {
			if err := c.send(frameMethod, step.channel, step.send); err != nil {
				return err
			}
		}
		if step.replyClass != 0 {
			if _, err := c.expect(step.replyClass, step.replyName); err != nil {
				return err
			}
		}
	}
	return nil
}

// delivery reads a basic.deliver with its content header and body frames.
func (c *conn) delivery() (tag uint64, body []byte, err error) {
	args, err := c.expect(60, 60)
	if err != nil {
		return 0, nil, err
	}
	args = args[1+int(args[0]):] // the consumer tag
	tag = binary.BigEndian.Uint64(args)
	kind, _, header, err := c.frame()
	if err != nil || kind != frameHeader {
		return 0, nil, fmt.Errorf("expected a content header (frame type %d): %v", kind, err)
	}
	size := binary.BigEndian.Uint64(header[4:])
	for uint64(len(body)) < size {
		_, _, part, err := c.frame()
		if err != nil {
			return 0, nil, err
		}
		body = append(body, part...)
	}
	return tag, body, nil
}

func (c *conn) expect(class, name uint16) ([]byte, error) {
	for {
		kind, _, payload, err := c.frame()
		if err != nil {
			return nil, err
		}
		if kind == frameHeartbeat {
			continue
		}
		if kind == frameMethod && binary.BigEndian.Uint16(payload) == class && binary.BigEndian.Uint16(payload[2:]) == name {
			return payload[4:], nil
		}
		return nil, fmt.Errorf("expected method %d.%d, got frame type %d %x", class, name, kind, payload[:min(len(payload), 8)])
	}
}

func (c *conn) frame() (kind byte, channel uint16, payload []byte, err error) {
	var header [7]byte
	if _, err := io.ReadFull(c.r, header[:]); err != nil {
		return 0, 0, nil, err
	}
	payload = make([]byte, binary.BigEndian.Uint32(header[3:])+1) // and the frame-end octet
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return 0, 0, nil, err
	}
	return header[0], binary.BigEndian.Uint16(header[1:]), payload[:len(payload)-1], nil
}

func (c *conn) send(kind byte, channel uint16, payload []byte) error {
	frame := []byte{kind}
	frame = binary.BigEndian.AppendUint16(frame, channel)
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
	frame = append(append(frame, payload...), 0xCE)
	_, err := c.w.Write(frame)
	return err
}

func method(class, name uint16, args ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, class)
	b = binary.BigEndian.AppendUint16(b, name)
	for _, a := range args {
		b = append(b, a...)
	}
	return b
}

func shortstr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func longstr(s string) []byte  { return append(u32(uint32(len(s))), s...) }
func u16(v uint16) []byte      { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte      { return binary.BigEndian.AppendUint32(nil, v) }
