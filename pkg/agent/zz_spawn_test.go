package agent

import (
	"os"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkZZSpawn runs `cat` for an item through os/exec and through syscall.ForkExec, in
// mirrored rounds, and reports the time and the agent's CPU per item of each.
func BenchmarkZZSpawn(b *testing.B) {
	devNull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	a := newAgent(Config{BrokerURL: "amqp://u:p@h:5672/", Queue: "q", Command: []string{"cat"}, Stdout: devNull, Stderr: devNull, Log: devNull})
	if err := a.validate(); err != nil {
		b.Fatal(err)
	}
	it := newItem(amqp.Delivery{MessageId: "m", Body: []byte("item 1\n")})
	var el, cpu [2]time.Duration
	n := 300
	defer func(saved bool) { zzFast = saved }(zzFast)
	for range b.N {
		for round := 0; round < 6; round++ {
			for _, v := range []int{round % 2, 1 - round%2} {
				zzFast = v == 1
				start, c0 := time.Now(), cpuNow()
				for i := 0; i < n; i++ {
					if r := a.runCommand(it); !r.exitedZero() {
						b.Fatal(r.err)
					}
				}
				el[v] += time.Since(start)
				cpu[v] += cpuNow() - c0
			}
		}
	}
	N := time.Duration(6 * n * b.N)
	b.Logf("exec.Cmd %v/item (agent CPU %v), ForkExec %v/item (agent CPU %v)", el[0]/N, cpu[0]/N, el[1]/N, cpu[1]/N)
}
