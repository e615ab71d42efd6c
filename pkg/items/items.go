// Package items splits input streams into work items: one per line, per NUL-terminated record,
// or per JSON line. It streams: memory use is bounded by the largest item, whatever the input size.
package items

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Format says how an input is split into items.
type Format int

const (
	Lines     Format = iota // one item per line; "\n" or "\r\n" ends a line and is not part of the item
	NULs                    // one item per NUL-terminated record; bytes are kept as they are
	JSONLines               // one item per line, each a valid JSON document
)

// ContentType is the AMQP content type of items in this format.
func (f Format) ContentType() string {
	switch f {
	case JSONLines:
		return "application/json"
	case NULs:
		return "application/octet-stream"
	default:
		return "text/plain; charset=utf-8"
	}
}

// Item is one unit of work and where it came from, so errors can point at it.
type Item struct {
	Body   []byte
	Source string // file name, "stdin" or "--item"
	Record int    // 1-based line or record number within Source
}

// Where names the item's origin for a user: "items.txt:12".
func (i Item) Where() string {
	return fmt.Sprintf("%s:%d", i.Source, i.Record)
}

// ErrTooLarge is returned (wrapped) for an item longer than the configured maximum.
var ErrTooLarge = errors.New("item too large")

// Named is one input and the name used for it in messages.
type Named struct {
	Name   string
	Reader io.Reader
}

// Reader yields items from several inputs in order.
type Reader struct {
	format  Format
	maxSize int
	inputs  []Named
	current *bufio.Reader
	record  int
	// Skipped counts empty records, which are never items.
	Skipped int
}

// NewReader reads inputs one after the other. maxSize bounds one item, in bytes.
func NewReader(format Format, maxSize int, inputs ...Named) *Reader {
	return &Reader{format: format, maxSize: maxSize, inputs: inputs}
}

// Next returns the next item, or io.EOF after the last one.
func (r *Reader) Next() (Item, error) {
	for len(r.inputs) > 0 {
		in := r.inputs[0]
		if r.current == nil {
			r.current = bufio.NewReaderSize(in.Reader, 64*1024)
			r.record = 0
		}
		body, err := r.readRecord()
		if err == io.EOF && body == nil {
			r.inputs, r.current = r.inputs[1:], nil
			continue
		}
		r.record++
		item := Item{Body: body, Source: in.Name, Record: r.record}
		if err != nil && err != io.EOF {
			return item, fmt.Errorf("%s: %w", item.Where(), err)
		}
		if r.format != NULs && bytes.IndexByte(body, 0) >= 0 {
			// `find -print0 | kubectl workqueue fill` would otherwise be one item holding every name.
			return item, fmt.Errorf("%s: the input contains NUL bytes, as find -print0 and xargs -0 use between names: pass --null to make each NUL-terminated record an item", item.Where())
		}
		if len(body) == 0 || (r.format == JSONLines && len(bytes.TrimSpace(body)) == 0) {
			r.Skipped++
			continue
		}
		if r.format == JSONLines && !json.Valid(body) {
			return item, fmt.Errorf("%s: not valid JSON (with --json-lines every non-empty line must be one JSON document)", item.Where())
		}
		return item, nil
	}
	return Item{}, io.EOF
}

// readRecord returns the next record without its terminator. It returns (nil, io.EOF) when the
// input is exhausted and (record, io.EOF) for a final record with no terminator.
func (r *Reader) readRecord() ([]byte, error) {
	delim := byte('\n')
	if r.format == NULs {
		delim = 0
	}
	var record []byte
	for {
		chunk, err := r.current.ReadSlice(delim)
		if len(record)+len(chunk) > r.maxSize+2 { // +2: the terminator may be "\r\n"
			r.discardRecord(delim)
			return nil, r.tooLarge()
		}
		record = append(record, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(record) == 0 {
				return nil, io.EOF
			}
			record = r.trim(record, false)
		case err != nil:
			return nil, err
		default:
			record = r.trim(record, true)
		}
		if len(record) > r.maxSize {
			return nil, r.tooLarge()
		}
		return record, err
	}
}

func (r *Reader) tooLarge() error {
	return fmt.Errorf("%w: longer than %d bytes (raise --max-item-size if the broker accepts larger messages)", ErrTooLarge, r.maxSize)
}

func (r *Reader) trim(record []byte, terminated bool) []byte {
	if terminated {
		record = record[:len(record)-1]
	}
	if r.format != NULs {
		record = bytes.TrimSuffix(record, []byte("\r"))
	}
	if record == nil {
		return []byte{}
	}
	return record
}

func (r *Reader) discardRecord(delim byte) {
	for {
		_, err := r.current.ReadSlice(delim)
		if err != bufio.ErrBufferFull {
			return
		}
	}
}
