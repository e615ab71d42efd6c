// Package archtest holds the rules of docs/architecture.md as tests, so that they stay true:
// which of our packages may import which, that only the command layer knows cobra and
// cli-runtime, and that no file of pkg/ outgrows a reader.
package archtest

import (
	"bufio"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/kubectl-workqueue/kubectl-workqueue/"

// allowed lists, for each package, the packages of this module it may import. A new arrow
// belongs in docs/architecture.md first.
var allowed = map[string][]string{
	"pkg/constants":   nil,
	"pkg/outcome":     nil,
	"pkg/items":       nil,
	"pkg/podstatus":   nil,
	"pkg/portforward": nil,
	"pkg/queue":       {"pkg/constants", "pkg/items"},
	"pkg/job":         {"pkg/constants", "pkg/outcome"},
	"pkg/tail":        {"pkg/constants", "pkg/job", "pkg/outcome", "pkg/podstatus"},
	"pkg/agent":       {"pkg/constants", "pkg/outcome", "pkg/queue"},
	"pkg/rabbitmq":    {"pkg/constants", "pkg/podstatus", "pkg/portforward", "pkg/queue"},
	"pkg/workqueue":   {"pkg/constants", "pkg/job", "pkg/outcome", "pkg/queue", "pkg/rabbitmq", "pkg/tail"},
	"pkg/doctor":      {"pkg/constants", "pkg/podstatus", "pkg/portforward", "pkg/queue", "pkg/rabbitmq", "pkg/tail"},
	"pkg/plugin": {"pkg/constants", "pkg/items", "pkg/job", "pkg/outcome", "pkg/queue", "pkg/rabbitmq",
		"pkg/tail", "pkg/workqueue", "pkg/doctor"},
	"cmd/kubectl-workqueue": {"pkg/plugin"},
	"cmd/workqueue-agent":   {"pkg/agent", "pkg/constants", "pkg/outcome"},
}

// commandLayer are the only packages that may import a command-line framework.
var commandLayer = map[string]bool{"pkg/plugin": true, "cmd/kubectl-workqueue": true}

var commandLibraries = []string{"github.com/spf13/cobra", "github.com/spf13/pflag", "k8s.io/cli-runtime", "k8s.io/kubectl/pkg/cmd"}

// maxLines bounds a non-test file of pkg/.
const maxLines = 400

func TestImportsFollowTheArchitecture(t *testing.T) {
	for pkg, imports := range importsByPackage(t) {
		may, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in docs/architecture.md (nor in this test's table)", pkg)
			continue
		}
		for _, imp := range imports {
			if own, ok := strings.CutPrefix(imp, module); ok {
				if !slices.Contains(may, own) {
					t.Errorf("%s imports %s, which the architecture does not allow", pkg, own)
				}
				continue
			}
			for _, lib := range commandLibraries {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !commandLayer[pkg] {
					t.Errorf("%s imports %s: only the command layer (pkg/plugin, cmd/) may", pkg, imp)
				}
			}
		}
	}
}

func TestNoFileOfPkgIsOverMaxLines(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root(t), "pkg", "*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		if n := countLines(t, file); n > maxLines {
			rel, _ := filepath.Rel(root(t), file)
			t.Errorf("%s has %d lines; split it by concern (at most %d)", rel, n, maxLines)
		}
	}
}

func importsByPackage(t *testing.T) map[string][]string {
	t.Helper()
	result := map[string][]string{}
	for _, dir := range []string{"pkg", "cmd"} {
		entries, err := os.ReadDir(filepath.Join(root(t), dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, entry := range entries {
			if !entry.IsDir() {
				continue
			}
			pkg := dir + "/" + entry.Name()
			seen := map[string]bool{}
			files, _ := filepath.Glob(filepath.Join(root(t), pkg, "*.go"))
			for _, file := range files {
				if strings.HasSuffix(file, "_test.go") {
					continue
				}
				parsed, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
				if err != nil {
					t.Fatal(err)
				}
				for _, imp := range parsed.Imports {
					path, _ := strconv.Unquote(imp.Path.Value)
					seen[path] = true
				}
			}
			for path := range seen {
				result[pkg] = append(result[pkg], path)
			}
			sort.Strings(result[pkg])
		}
	}
	return result
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func countLines(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	n := 0
	for scanner.Scan() {
		n++
	}
	return n
}
