package tail

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// StreamLog follows one container's log and hands each line to onLine, whatever its length,
// until the log ends or ctx does. It returns why the stream could not start or ended early.
func StreamLog(ctx context.Context, client kubernetes.Interface, namespace, pod, container string, onLine func(string)) error {
	stream, err := client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("cannot stream the log: %w", err)
	}
	defer stream.Close()
	if err := CopyLines(stream, onLine); err != nil {
		return fmt.Errorf("the log stream ended: %w", err)
	}
	return nil
}

// CopyLines hands each line of r to onLine without its newline, whatever its length, and
// returns why r ended unless it simply did.
func CopyLines(r io.Reader, onLine func(string)) error {
	reader := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := reader.ReadString('\n')
		if line != "" {
			onLine(strings.TrimSuffix(line, "\n"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
