package plugin

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// confirmer asks before a command destroys items: on a terminal it asks, elsewhere (a script,
// CI) it refuses unless --yes was given, so nothing is lost to a command nobody looked at.
type confirmer struct {
	yes      bool
	terminal func() bool // whether stdin is a terminal to ask on
	genericiooptions.IOStreams
}

// confirm returns nil when the user agrees to what question describes.
func (c confirmer) confirm(question string) error {
	if c.yes {
		return nil
	}
	if !c.terminal() {
		return badInput(fmt.Errorf("%s: pass --yes to confirm (there is no terminal to ask on)", question))
	}
	fmt.Fprintf(c.ErrOut, "%s? [y/N] ", question)
	answer, _ := bufio.NewReader(c.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was changed")
}
