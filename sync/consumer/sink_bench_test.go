package consumer

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ember-edge/ember/sync/uplink"
)

// BenchmarkSinkHandle measures the consumer's cost per record: decode
// and verify a batch of 256 ~660-byte results, write the new ones, with
// and without the fsync per envelope.
func BenchmarkSinkHandle(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			s, err := OpenSink(filepath.Join(b.TempDir(), "out.jsonl"), SinkOptions{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			m := NewTopicMatcher("plant", uplink.Topics{})
			var seq uint64
			var records int
			b.StopTimer()
			for range b.N {
				env := uplink.Envelope{DeviceID: "dev-1", Fleet: "plant", OutboxID: "A", Kind: uplink.KindResult, SentAt: time.Now()}
				for range 256 {
					seq++
					data, _ := json.Marshal(map[string]any{"job_id": seq, "pipeline": "alarms", "model": "qwen2.5-0.5b-instruct-q4_k_m",
						"output":       map[string]any{"severity": "high", "action": "reduce press speed and inspect cylinder 2"},
						"input":        map[string]any{"machine": "press-04", "code": "E-217", "text": "hydraulic pressure low on cylinder 2", "value": 81.5},
						"model_sha256": "9f1c0e5e0c3d0c4a86a8a05e8c1d0ad7c3a3a1f86a1a8b3a0ad3e1b4e1f1c2d3", "prompt_tokens": 87, "completion_tokens": 24})
					env.Records = append(env.Records, uplink.EnvelopeRecord{Seq: seq, Kind: uplink.KindResult, Priority: 5, CreatedAt: time.Now(), Data: data})
				}
				p, _ := uplink.EncodeEnvelope(env)
				b.StartTimer()
				if _, err := s.Handle("fleet/v1/plant/dev-1/results", p, m); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				records += 256
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(records), "µs/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}
