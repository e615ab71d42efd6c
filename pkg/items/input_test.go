package items

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readInput(t *testing.T, in *Input) []string {
	t.Helper()
	var got []string
	for {
		item, err := in.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, item.Where()+"="+string(item.Body))
	}
}

func TestInputOrderAndTotals(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(file, []byte("one\n\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := InputSpec{Format: Lines, MaxSize: 100, Literals: []string{"lit"}, Files: []string{file}}
	in, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.Total != 3 || !in.TotalKnown {
		t.Fatalf("total %d known %v, want 3 known", in.Total, in.TotalKnown)
	}
	got := strings.Join(readInput(t, in), " ")
	if want := "--item:1=lit " + file + ":1=one " + file + ":3=two"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if in.EmptyRecords() != 1 {
		t.Errorf("empty records %d, want 1", in.EmptyRecords())
	}

	spec.Files = []string{file, "-"}
	spec.Stdin = strings.NewReader("three\n")
	in, err = Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Skip(2); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(readInput(t, in), " "); in.TotalKnown || got != file+":3=two stdin:1=three" {
		t.Fatalf("after skipping 2 (total known %v): %q", in.TotalKnown, got)
	}
}

func TestInputRefusesBeforeReading(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec InputSpec
		want string
	}{
		{InputSpec{Format: JSONLines, MaxSize: 100, Files: []string{bad}}, "bad.jsonl:2: not valid JSON"},
		{InputSpec{Format: Lines, MaxSize: 100, Files: []string{filepath.Join(dir, "missing")}}, "cannot read --from-file"},
		{InputSpec{Format: Lines, MaxSize: 100, Files: []string{"-", "-"}}, "only once"},
		{InputSpec{Format: Lines, MaxSize: 3, Literals: []string{"long"}}, "longer than --max-item-size"},
		{InputSpec{Format: JSONLines, MaxSize: 100, Literals: []string{"{oops"}}, "not valid JSON"},
	} {
		if _, err := Open(context.Background(), tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: want %q, got %v", tc.spec, tc.want, err)
		}
	}
	in, err := Open(context.Background(), InputSpec{Format: Lines, MaxSize: 100, Literals: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Skip(2); err == nil || !strings.Contains(err.Error(), "more than the 1 items") {
		t.Errorf("skip past the end: %v", err)
	}
}
