//go:build unix

package scheduler

import (
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// BenchmarkIdle measures the engine while nothing is due for a day, with
// 10 000 active tasks in the store: its reads of the clock per minute (each
// wake-up reads it twice: when it claims, and to set its timer), and the CPU
// time of the whole test process per idle second, with the engine and,
// for comparison, over as long a stretch before it started.
func BenchmarkIdle(b *testing.B) {
	st := openStore(b, b.TempDir()+"/bench.db")
	seedFarTasks(b, st, 10000)
	idle := func() (time.Duration, time.Duration) {
		cpu, start := cpuTime(b), time.Now()
		for range b.N {
			time.Sleep(100 * time.Millisecond)
		}
		return cpuTime(b) - cpu, time.Since(start)
	}
	b.StopTimer()
	b.ResetTimer()
	baseCPU, baseWall := idle()

	clock := &countingClock{}
	startEngine(b, New(Options{Store: st, Logger: quietLogger(), Clock: clock.now}), func(t store.Task) { b.Errorf("task %s dispatched", t.ID) })
	for deadline := time.Now().Add(3 * time.Second); clock.reads() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the engine did not look for due tasks within 3 s")
		}
	}
	time.Sleep(50 * time.Millisecond) // let the start-up round settle
	reads := clock.reads()
	b.StartTimer()
	cpu, wall := idle()
	b.StopTimer()

	perSecond := func(cpu, wall time.Duration) float64 {
		return float64(cpu) / float64(time.Millisecond) / wall.Seconds()
	}
	b.ReportMetric(float64(clock.reads()-reads)/wall.Minutes(), "clock-reads/min")
	b.ReportMetric(perSecond(cpu, wall), "cpu-ms/s")
	b.ReportMetric(perSecond(baseCPU, baseWall), "no-engine-cpu-ms/s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
