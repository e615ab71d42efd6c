package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// completionShimName is the executable kubectl (1.26+) runs to complete a plugin's arguments.
const completionShimName = "kubectl_complete-workqueue"

// completionShim is the repository's kubectl_complete-workqueue; a test keeps the two equal.
const completionShim = `#!/bin/sh
# Shell completion for ` + "`kubectl workqueue`" + ` (kubectl 1.26 and later): kubectl completes a plugin's
# arguments by running kubectl_complete-PLUGIN from PATH with the words typed so far. Put this file
# on PATH, next to kubectl-workqueue; it asks the plugin itself (cobra's __complete command).
exec kubectl workqueue __complete "$@"
`

// newCompletionShimCommand builds `kubectl workqueue completion-shim`: krew links only the
// plugin's binary onto the PATH, and `go install` ships no script, so the plugin writes its own.
func newCompletionShimCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion-shim [DIR]",
		Short: "Write kubectl_complete-workqueue, for kubectl's completion",
		Long: longDesc(`
			Write kubectl_complete-workqueue, the executable kubectl (1.26 and later) runs to
			complete ` + "`kubectl workqueue`" + `, into DIR: by default the directory of this
			executable, which is on the PATH (for krew, its bin directory). kubectl's own shell
			completion must be set up (kubectl completion --help).`),
		Example: examples(`
			# Next to the plugin (krew's bin directory for a krew install)
			kubectl workqueue completion-shim

			# Somewhere else on the PATH
			kubectl workqueue completion-shim ~/bin`),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			} else {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("cannot find this executable's directory (%w): name a DIR", err)
				}
				// krew's bin holds a symlink into its store: the shim goes next to the link.
				dir = filepath.Dir(self)
				if path, err := exec.LookPath("kubectl-workqueue"); err == nil {
					dir = filepath.Dir(path)
				}
			}
			if info, err := os.Stat(dir); err != nil || !info.IsDir() {
				return badInput(fmt.Errorf("%s is not a directory", dir))
			}
			path := filepath.Join(dir, completionShimName)
			if err := os.WriteFile(path, []byte(completionShim), 0o755); err != nil {
				return fmt.Errorf("cannot write %s: %w", path, err)
			}
			fmt.Fprintf(streams.Out, "wrote %s: `kubectl workqueue <TAB>` completes once kubectl's own completion is set up\n", path)
			return nil
		},
	}
}
