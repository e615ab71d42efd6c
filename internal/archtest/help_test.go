package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every command's one-line summary fits kubectl's help layout, under 60 characters, and the
// help speaks to users, not in this project's own words.
func TestHelpSummariesAreShort(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root(t), "pkg", "plugin", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	short := regexp.MustCompile(`Short:\s+"((?:[^"\\]|\\.)*)"`)
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		out, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range short.FindAllStringSubmatch(string(out), -1) {
			found++
			if len(m[1]) >= 60 {
				t.Errorf("%s: summary of %d characters: %q", filepath.Base(file), len(m[1]), m[1])
			}
		}
		if strings.Contains(strings.ToLower(string(out)), "the seed") {
			t.Errorf("%s speaks of \"the seed\"", filepath.Base(file))
		}
	}
	if found < 10 {
		t.Fatalf("found %d summaries: the pattern no longer matches the commands", found)
	}
}
