package uplink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ember-edge/ember/daemon/store"
)

// BenchmarkSessionDrain drains a prefilled store through an uplink whose
// connection acknowledges every batch at once: the uplink's own cost per
// record (read, redact, encode, gzip, hash, cursor), without a broker.
func BenchmarkSessionDrain(b *testing.B) {
	const n = 20_000
	var drain time.Duration
	for b.Loop() {
		b.StopTimer()
		st := OpenTestStore(b)
		rs := make([]store.Record, n)
		for i := range rs {
			rs[i] = store.Record{Kind: store.KindTelemetry, Priority: 3, Pipeline: "line3",
				Data: fmt.Appendf(nil, `{"machine":"press-%02d","code":"E-%03d","value":%d.5,"text":"hydraulic pressure low on cylinder two"}`, i%40, i%500, i%1000)}
		}
		AppendRecords(b, st, rs)
		c := newFakeConn(8, true)
		u, err := New(Options{URL: "tcp://fake:1", Fleet: "f", Device: "d", Outbox: StoreOutbox{st}, Settings: st, SettingsNotFound: store.ErrNotFound})
		if err != nil {
			b.Fatal(err)
		}
		u.setDial(func(context.Context, int) (conn, error) { return c, nil })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- u.Run(ctx) }()
		for {
			if bl, _ := st.SyncBacklog(); bl.Records == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		drain += time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
	b.ReportMetric(drain.Seconds()*1e6/float64(n*b.N), "µs/record")
}
