package sparkplug_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ember-edge/ember/daemon/sparkplug"
	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

func nodeTopic(typ string, i int) string { return fmt.Sprintf("spBv1.0/G/%s/E%d", typ, i) }

// TestEvictsLeastRecentlyUsedNodes births more edge nodes than MaxNodes:
// the Decoder keeps the most recently heard from, and the forgotten ones'
// data fails with ErrNoBirth, as after a restart.
func TestEvictsLeastRecentlyUsedNodes(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{MaxNodes: 8})
	for i := range 100 {
		mustDecode(t, d, nodeTopic("NBIRTH", i), nodeBirth(0, 1))
		// Node 0 keeps talking, so it is never the least recently used.
		mustDecode(t, d, nodeTopic("NDATA", 0), nodeData((i+1)%256))
	}
	s := d.Stats()
	if s.Nodes != 8 || s.Evictions != 92 {
		t.Errorf("Stats = %+v; want 8 nodes after 92 evictions", s)
	}
	for _, i := range []int{0, 93, 99} {
		if _, ok := d.Node("G", fmt.Sprintf("E%d", i)); !ok {
			t.Errorf("recently used node E%d was evicted", i)
		}
	}
	_, err := d.Decode(nodeTopic("NDATA", 1), marshal(t, nodeData(1)))
	if !errors.Is(err, sparkplug.ErrNoBirth) || !sparkplug.NeedsRebirth(err) {
		t.Errorf("data of an evicted node: err = %v, want ErrNoBirth", err)
	}
}

// TestStateBytesBound births edge nodes with long metric names until
// they could not all fit: StateBytes never exceeds MaxStateBytes.
func TestStateBytesBound(t *testing.T) {
	const limit = 64 << 10
	d := newDecoder(t, sparkplug.Options{MaxStateBytes: limit})
	long := strings.Repeat("x", 1000)
	for i := range 200 {
		var ms []*sparkplugb.Payload_Metric
		for j := range 10 {
			ms = append(ms, metric(name(fmt.Sprintf("%s/%d", long, j)), alias(uint64(j)), dtype(sparkplug.TypeInt32), intv(1)))
		}
		mustDecode(t, d, nodeTopic("NBIRTH", i), payload(0, ms...))
		if s := d.Stats(); s.StateBytes > limit {
			t.Fatalf("after %d births StateBytes = %d, over %d", i+1, s.StateBytes, limit)
		}
	}
	s := d.Stats()
	if s.Nodes < 2 || s.Nodes > 7 || s.Evictions == 0 {
		t.Errorf("Stats = %+v; want a handful of ~11 KB nodes kept", s)
	}

	// One birth larger than the whole budget is refused, not stored.
	var ms []*sparkplugb.Payload_Metric
	for j := range 100 {
		ms = append(ms, metric(name(fmt.Sprintf("%s/%d", long, j)), dtype(sparkplug.TypeInt32), intv(1)))
	}
	_, err := d.Decode(nodeTopic("NBIRTH", 0), marshal(t, payload(0, ms...)))
	if !errors.Is(err, sparkplug.ErrTooLarge) {
		t.Errorf("oversized birth: err = %v, want ErrTooLarge", err)
	}
	if s := d.Stats(); s.StateBytes > limit {
		t.Errorf("StateBytes = %d after an oversized birth", s.StateBytes)
	}
}

// TestDevicesPerNodeBound births more devices than MaxDevicesPerNode.
func TestDevicesPerNodeBound(t *testing.T) {
	d := newDecoder(t, sparkplug.Options{MaxDevicesPerNode: 4})
	mustDecode(t, d, nbirth, nodeBirth(0, 1))
	seq := 1
	for i := range 10 {
		mustDecode(t, d, dbirth(fmt.Sprintf("D%d", i)), payload(seq, metric(name("v"), alias(1), dtype(sparkplug.TypeInt32), intv(1))))
		seq++
		// D0 keeps sending, so it stays.
		mustDecode(t, d, ddata("D0"), payload(seq, metric(alias(1), intv(2))))
		seq++
	}
	info, _ := d.Node("G", "E1")
	var ids []string
	for _, v := range info.Devices {
		ids = append(ids, v.ID)
	}
	if got := strings.Join(ids, ","); got != "D0,D7,D8,D9" {
		t.Errorf("devices = %s, want D0,D7,D8,D9", got)
	}
	if s := d.Stats(); s.Devices != 4 || s.Evictions != 6 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestStateStaysBoundedUnderManyNodes plays a misbehaving fleet: many
// edge nodes, each with devices, births and deaths, never exceeding any
// limit.
func TestStateStaysBoundedUnderManyNodes(t *testing.T) {
	opts := sparkplug.Options{MaxNodes: 50, MaxDevicesPerNode: 3, MaxStateBytes: 256 << 10}
	d := newDecoder(t, opts)
	for i := range 5000 {
		n := i % 700
		mustDecode(t, d, nodeTopic("NBIRTH", n), nodeBirth(0, uint64(i)))
		for dev := range 5 {
			topic := fmt.Sprintf("spBv1.0/G/DBIRTH/E%d/D%d", n, dev)
			mustDecode(t, d, topic, payload(dev+1, metric(name(strings.Repeat("m", 200)), alias(1), dtype(sparkplug.TypeInt32), intv(1))))
		}
		if i%3 == 0 {
			mustDecode(t, d, nodeTopic("NDEATH", n), payload(-1, bdSeq(uint64(i))))
		}
		if s := d.Stats(); s.Nodes > opts.MaxNodes || s.StateBytes > opts.MaxStateBytes || s.Devices > opts.MaxNodes*opts.MaxDevicesPerNode {
			t.Fatalf("after %d rounds: Stats = %+v, over %+v", i, s, opts)
		}
	}
}

// TestOneNodeOverBudgetShedsDevices fills MaxStateBytes with the devices
// of one edge node: with no other node to evict, the Decoder forgets that
// node's least recently used devices, never the node or the device being
// born.
func TestOneNodeOverBudgetShedsDevices(t *testing.T) {
	const limit = 16 << 10
	d := newDecoder(t, sparkplug.Options{MaxStateBytes: limit})
	mustDecode(t, d, nbirth, nodeBirth(0, 1))
	long := strings.Repeat("p", 3000)
	for i := range 20 {
		mustDecode(t, d, dbirth(fmt.Sprintf("D%02d", i)), payload(i+1, metric(name(long), alias(1), dtype(sparkplug.TypeInt32), intv(1))))
		if s := d.Stats(); s.StateBytes > limit {
			t.Fatalf("StateBytes = %d, over %d", s.StateBytes, limit)
		}
	}
	info, ok := d.Node("G", "E1")
	if !ok || !info.Online || len(info.Devices) == 0 || len(info.Devices) > 5 || info.Devices[len(info.Devices)-1].ID != "D19" {
		t.Errorf("Node = %+v, %v; want online, with the latest few devices", info, ok)
	}
	if _, err := d.Decode(ddata("D00"), marshal(t, payload(21, metric(alias(1), intv(2))))); !errors.Is(err, sparkplug.ErrNoBirth) {
		t.Errorf("data of a shed device: err = %v, want ErrNoBirth", err)
	}
	mustDecode(t, d, ndata, nodeData(22))

	// A device birth that cannot fit next to its node's is refused.
	huge := payload(23, metric(name(strings.Repeat("q", limit)), dtype(sparkplug.TypeInt32), intv(1)))
	if _, err := d.Decode(dbirth("big"), marshal(t, huge)); !errors.Is(err, sparkplug.ErrTooLarge) {
		t.Errorf("oversized DBIRTH: err = %v, want ErrTooLarge", err)
	}
}
