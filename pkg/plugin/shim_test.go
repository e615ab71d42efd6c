package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompletionShimIsTheRepositorysAndIsWritten(t *testing.T) {
	inRepo, err := os.ReadFile("../../" + completionShimName)
	if err != nil {
		t.Fatal(err)
	}
	if string(inRepo) != completionShim {
		t.Fatalf("the shim the plugin writes differs from the repository's %s", completionShimName)
	}
	dir := t.TempDir()
	out, _, err := runCommand(t, newFakeGetter(), "", "completion-shim", dir)
	if err != nil || !strings.Contains(out, "wrote "+filepath.Join(dir, completionShimName)) {
		t.Fatalf("%v %q", err, out)
	}
	info, err := os.Stat(filepath.Join(dir, completionShimName))
	if err != nil || info.Mode().Perm()&0o111 == 0 {
		t.Fatalf("not an executable: %v %v", err, info)
	}
	if _, _, err := runCommand(t, newFakeGetter(), "", "completion-shim", filepath.Join(dir, "missing")); ExitCode(err, false) != ExitBadInput {
		t.Fatalf("a missing directory: %v", err)
	}
}
