package items

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// InputSpec names every input of one fill: literal items first, then files in order, "-"
// standing for Stdin; Stdin alone when neither is given.
type InputSpec struct {
	Format   Format
	MaxSize  int // bytes per item
	Literals []string
	Files    []string
	Stdin    io.Reader
}

// UsesStdin tells whether the inputs read standard input.
func (s InputSpec) UsesStdin() bool {
	if len(s.Files) == 0 && len(s.Literals) == 0 {
		return true
	}
	for _, name := range s.Files {
		if name == "-" {
			return true
		}
	}
	return false
}

// Validate checks what can be checked without reading: literal items and the use of stdin.
func (s InputSpec) Validate() error {
	stdinUses := 0
	for _, name := range s.Files {
		if name == "-" {
			stdinUses++
		}
	}
	if stdinUses > 1 {
		return errors.New("--from-file - (stdin) can be given only once")
	}
	for i, literal := range s.Literals {
		switch {
		case literal == "":
			return fmt.Errorf("--item number %d is empty: an item needs at least one byte", i+1)
		case s.Format == JSONLines && !json.Valid([]byte(literal)):
			return fmt.Errorf("--item %q is not valid JSON (with --json-lines every item must be one JSON document)", literal)
		case len(literal) > s.MaxSize:
			return fmt.Errorf("--item %.20q...: longer than --max-item-size (%d bytes)", literal, s.MaxSize)
		}
	}
	return nil
}

// Input yields the items of every input of an InputSpec in order.
type Input struct {
	// Total is the number of items, when TotalKnown: files are counted before anything is
	// read for real, stdin cannot be.
	Total      int
	TotalKnown bool

	literals []string
	next     int
	reader   *Reader
	files    []*os.File
	source   interface{ Next() (Item, error) }
}

// Open opens every input. Files are read whole first (readable, well-formed, counted) so that
// a bad record fails before anything is published; stdin can only be checked as it streams.
// Reading stdin stops when ctx ends, even while the input has nothing to give.
func Open(ctx context.Context, spec InputSpec) (*Input, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	in := &Input{literals: spec.Literals, Total: len(spec.Literals), TotalKnown: true}
	var named []Named
	for _, name := range spec.Files {
		if name == "-" {
			named = append(named, Named{Name: "stdin", Reader: spec.Stdin})
			in.TotalKnown = false
			continue
		}
		f, err := openCounted(spec, name)
		if err != nil {
			in.Close()
			return nil, err
		}
		in.files = append(in.files, f.file)
		in.Total += f.count
		named = append(named, Named{Name: name, Reader: f.file})
	}
	if len(spec.Files) == 0 && len(spec.Literals) == 0 {
		named = append(named, Named{Name: "stdin", Reader: spec.Stdin})
		in.TotalKnown = false
	}
	in.reader = NewReader(spec.Format, spec.MaxSize, named...)
	in.source = literalsThenReader{in}
	if !in.TotalKnown {
		in.source = newInterruptible(ctx, in.source)
	}
	return in, nil
}

type countedFile struct {
	file  *os.File
	count int
}

func openCounted(spec InputSpec, name string) (countedFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return countedFile{}, fmt.Errorf("cannot read --from-file %s: %w", name, errors.Unwrap(err))
	}
	count, err := Count(spec.Format, spec.MaxSize, Named{Name: name, Reader: f})
	if err == nil {
		if _, seekErr := f.Seek(0, io.SeekStart); seekErr != nil {
			// Not seekable (a named pipe): it can only be read once, as it streams.
			err = fmt.Errorf("--from-file %s cannot be read twice; pipe it on stdin instead", name)
		}
	}
	if err != nil {
		f.Close()
		return countedFile{}, err
	}
	return countedFile{file: f, count: count}, nil
}

// Count reads an input to its end and returns how many items it holds, or its first bad record.
func Count(format Format, maxSize int, input Named) (int, error) {
	reader := NewReader(format, maxSize, input)
	n := 0
	for {
		_, err := reader.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}

// Next returns the next item; io.EOF ends the input.
func (in *Input) Next() (Item, error) { return in.source.Next() }

// EmptyRecords counts the empty records met so far, which are never items.
func (in *Input) EmptyRecords() int { return in.reader.Skipped }

// Skip reads past the first n items, to resume a fill that stopped.
func (in *Input) Skip(n int) error {
	for skipped := 0; skipped < n; skipped++ {
		if _, err := in.Next(); err == io.EOF {
			return fmt.Errorf("--skip %d is more than the %d items in the input", n, skipped)
		} else if err != nil {
			return err
		}
	}
	if in.TotalKnown {
		in.Total -= n
	}
	return nil
}

// Close closes the files.
func (in *Input) Close() {
	for _, f := range in.files {
		f.Close()
	}
}

// literalsThenReader yields the literal items, then the items of the inputs.
type literalsThenReader struct{ in *Input }

func (s literalsThenReader) Next() (Item, error) {
	in := s.in
	if in.next < len(in.literals) {
		in.next++
		return Item{Body: []byte(in.literals[in.next-1]), Source: "--item", Record: in.next}, nil
	}
	return in.reader.Next()
}

// interruptible reads items ahead in a goroutine, so that the end of ctx (Ctrl-C) is noticed
// while stdin, a pipe or a terminal, has nothing to give. Items read ahead are not lost when it
// stops: the caller reports what was published, and a resumed fill skips exactly that.
type interruptible struct {
	ctx   context.Context
	ahead chan readResult
}

type readResult struct {
	item Item
	err  error
}

func newInterruptible(ctx context.Context, src interface{ Next() (Item, error) }) *interruptible {
	s := &interruptible{ctx: ctx, ahead: make(chan readResult, 256)}
	go func() {
		for {
			item, err := src.Next()
			select {
			case s.ahead <- readResult{item, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *interruptible) Next() (Item, error) {
	select {
	case r := <-s.ahead:
		return r.item, r.err
	case <-s.ctx.Done():
		return Item{}, errors.New("interrupted while waiting for input")
	}
}

// Peeked is a source whose first item was already taken, e.g. to fail fast on empty input.
type Peeked struct {
	First *Item
	Rest  interface{ Next() (Item, error) }
}

// Next returns First, then the rest.
func (p *Peeked) Next() (Item, error) {
	if p.First != nil {
		item := *p.First
		p.First = nil
		return item, nil
	}
	return p.Rest.Next()
}
