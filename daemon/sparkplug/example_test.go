package sparkplug_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// A pipeline decodes each MQTT message; data that arrives before its
// birth certificate asks the edge node to rebirth.
func ExampleDecoder() {
	d, err := sparkplug.NewDecoder(sparkplug.Options{})
	if err != nil {
		panic(err)
	}
	handle := func(topic string, p *sparkplugb.Payload) {
		body, _ := proto.Marshal(p)
		msg, err := d.Decode(topic, body)
		switch {
		case sparkplug.NeedsRebirth(err):
			t, _ := sparkplug.ParseTopic(topic)
			cmd, _, _ := sparkplug.RebirthRequest(t, time.Now())
			fmt.Println("dead letter, and publish a rebirth request to", cmd)
		case err != nil:
			fmt.Println("dead letter:", err)
		default:
			fmt.Println(msg.Type, msg.Fields())
		}
	}

	data := &sparkplugb.Payload{Seq: proto.Uint64(1), Metrics: []*sparkplugb.Payload_Metric{
		{Alias: proto.Uint64(1), Value: &sparkplugb.Payload_Metric_FloatValue{FloatValue: 21.5}},
	}}
	handle("spBv1.0/Plant1/NDATA/Line3", data)
	handle("spBv1.0/Plant1/NBIRTH/Line3", &sparkplugb.Payload{Seq: proto.Uint64(0), Metrics: []*sparkplugb.Payload_Metric{
		{Name: proto.String("bdSeq"), Datatype: proto.Uint32(uint32(sparkplug.TypeInt64)), Value: &sparkplugb.Payload_Metric_LongValue{LongValue: 0}},
		{Name: proto.String("Oven/Temperature"), Alias: proto.Uint64(1), Datatype: proto.Uint32(uint32(sparkplug.TypeFloat)), Value: &sparkplugb.Payload_Metric_FloatValue{FloatValue: 20}},
	}})
	handle("spBv1.0/Plant1/NDATA/Line3", data)
	handle("spBv1.0/Plant1/NDATA/Line3/extra", data)
	// Output:
	// dead letter, and publish a rebirth request to spBv1.0/Plant1/NCMD/Line3
	// NBIRTH map[Oven/Temperature:20 bdSeq:0]
	// NDATA map[Oven/Temperature:21.5]
	// dead letter: sparkplug: topic "spBv1.0/Plant1/NDATA/Line3/extra": NDATA takes no device_id: invalid Sparkplug topic
}

// BenchmarkDecodeData measures the steady state of a pipeline: NDATA of
// twenty metrics by alias.
func BenchmarkDecodeData(b *testing.B) {
	d := newDecoder(b, sparkplug.Options{})
	birth := payload(0, bdSeq(0))
	var data []*sparkplugb.Payload_Metric
	for i := range 20 {
		birth.Metrics = append(birth.Metrics, metric(name(fmt.Sprintf("Line3/Sensor%02d", i)), alias(uint64(i)), dtype(sparkplug.TypeDouble), doublev(0)))
		data = append(data, metric(alias(uint64(i)), stamp(baseTime), doublev(float64(i))))
	}
	mustDecode(b, d, nbirth, birth)
	bodies := make([][]byte, 256)
	for seq := range bodies {
		bodies[seq] = marshal(b, payload(seq, data...))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := d.Decode(ndata, bodies[(i+1)%256]); err != nil {
			b.Fatal(err)
		}
	}
}
