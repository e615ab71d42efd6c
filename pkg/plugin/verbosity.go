package plugin

import (
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// maxVerbosity is the highest klog verbosity -v sets. From 8 on, client-go logs the bodies of
// requests and responses, and those of the Secrets workqueue-broker and JOB-broker-url hold the
// broker's password, which the plugin never prints. At 6 client-go logs each API request with its
// status and time, at 7 their headers too (with credentials masked).
const maxVerbosity = 7

// verbosityFlag is klog's -v, as kubectl has it, capped at maxVerbosity.
type verbosityFlag struct {
	klogV  flag.Value // klog's own -v, which sets its global verbosity
	errOut io.Writer  // where a capped level is reported
}

// addVerbosityFlag adds -v (and --v) to flags: klog's verbosity, and only that of klog's flags.
func addVerbosityFlag(flags *pflag.FlagSet, errOut io.Writer) {
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	v := &verbosityFlag{klogV: klogFlags.Lookup("v").Value, errOut: errOut}
	flags.VarP(v, "v", "v", fmt.Sprintf("Log level, as kubectl's: 6 logs each API request, 7 their headers too; at most %d, as higher levels would log Secrets' data", maxVerbosity))
}

func (v *verbosityFlag) String() string { return v.klogV.String() }

func (v *verbosityFlag) Type() string { return "Level" }

// Set sets klog's verbosity to level, or to maxVerbosity when level is higher, saying so.
func (v *verbosityFlag) Set(value string) error {
	level, err := strconv.ParseInt(value, 10, 32)
	if err != nil || level < 0 {
		return fmt.Errorf("%q is not a log level (0, 1, ... %d)", value, maxVerbosity)
	}
	if level > maxVerbosity {
		fmt.Fprintf(v.errOut, "-v=%d is taken as -v=%d: higher levels would log API response bodies, Secrets' data included\n", level, maxVerbosity)
		level = maxVerbosity
	}
	return v.klogV.Set(strconv.FormatInt(level, 10))
}
