package items

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r *Reader) ([]string, error) {
	t.Helper()
	var got []string
	for {
		item, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, string(item.Body))
	}
}

func TestFormats(t *testing.T) {
	cases := []struct {
		name        string
		format      Format
		input       string
		want        []string
		wantSkipped int
	}{
		{"lines", Lines, "apple\nbanana\ncherry\n", []string{"apple", "banana", "cherry"}, 0},
		{"no final newline", Lines, "apple\nbanana", []string{"apple", "banana"}, 0},
		{"crlf never part of an item", Lines, "apple\r\nbanana\r\n", []string{"apple", "banana"}, 0},
		{"empty lines skipped and counted", Lines, "\napple\n\n\r\nbanana\n\n", []string{"apple", "banana"}, 4},
		{"spaces kept", Lines, "  a b  \n", []string{"  a b  "}, 0},
		{"nul records keep newlines and CR", NULs, "a\nb\x00c\r\n\x00\x00d", []string{"a\nb", "c\r\n", "d"}, 1},
		{"json lines", JSONLines, "{\"a\":1}\n\n[1,2]\n\"s\"\n", []string{`{"a":1}`, "[1,2]", `"s"`}, 1},
		{"empty input", Lines, "", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.format, 1<<20, Named{"in", strings.NewReader(tc.input)})
			got, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if r.Skipped != tc.wantSkipped {
				t.Fatalf("skipped %d, want %d", r.Skipped, tc.wantSkipped)
			}
		})
	}
}

func TestSeveralInputsInOrderWithPositions(t *testing.T) {
	r := NewReader(Lines, 100,
		Named{"a.txt", strings.NewReader("1\n2\n")},
		Named{"--item", strings.NewReader("x")},
		Named{"stdin", iotest.OneByteReader(strings.NewReader("\ny\n"))})
	var where []string
	for {
		item, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		where = append(where, string(item.Body)+"@"+item.Where())
	}
	want := "1@a.txt:1 2@a.txt:2 x@--item:1 y@stdin:2"
	if got := strings.Join(where, " "); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestLongLinesAcrossBufferBoundaries(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	r := NewReader(Lines, 300_000, Named{"in", strings.NewReader(long + "\r\nshort\n")})
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != long || got[1] != "short" {
		t.Fatalf("got %d items, first of %d bytes", len(got), len(got[0]))
	}
}

func TestTooLargeNamesTheItem(t *testing.T) {
	r := NewReader(Lines, 5, Named{"big.txt", strings.NewReader("12345\n123456\nok\n")})
	if item, err := r.Next(); err != nil || string(item.Body) != "12345" {
		t.Fatalf("an item of exactly the limit must pass: %q %v", item.Body, err)
	}
	_, err := r.Next()
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.txt:2") {
		t.Fatalf("want ErrTooLarge naming big.txt:2, got %v", err)
	}
}

func TestBrokenJSONLineNamesTheLine(t *testing.T) {
	r := NewReader(JSONLines, 100, Named{"in.jsonl", strings.NewReader("{\"a\":1}\n{oops\n{\"b\":2}\n")})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if err == nil || !strings.Contains(err.Error(), "in.jsonl:2") || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("got %v", err)
	}
}

func TestReadErrorIsReported(t *testing.T) {
	r := NewReader(Lines, 100, Named{"broken", iotest.ErrReader(errors.New("disk on fire"))})
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got %v", err)
	}
}

// `find -print0 | kubectl workqueue fill q` without --null would be one item holding every name.
func TestNULBytesInLinesAskForNull(t *testing.T) {
	for _, format := range []Format{Lines, JSONLines} {
		r := NewReader(format, 1<<20, Named{Name: "stdin", Reader: strings.NewReader("./a.txt\x00./b.txt\x00")})
		_, err := readAll(t, r)
		if err == nil || !strings.Contains(err.Error(), "stdin:1: the input contains NUL bytes") || !strings.Contains(err.Error(), "pass --null") {
			t.Errorf("format %d: got %v", format, err)
		}
	}
}
