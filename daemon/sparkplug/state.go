package sparkplug

import (
	"container/list"
	"slices"
	"strings"
)

// nodeKey identifies an edge node: its group and edge node IDs.
type nodeKey struct{ group, edgeNode string }

// node is what the Decoder remembers of one edge node.
//
// A node is online from its NBIRTH to its NDEATH, and only then has a
// birth certificate (metrics) and devices. An offline node is kept, with
// its bdSeq, so that data arriving after its death fails with ErrOffline
// and a repeated death is recognised, until it rebirths or is evicted.
type node struct {
	key  nodeKey
	elem *list.Element // in Decoder.lru

	online   bool
	metrics  *aliasTable // nil when offline
	devices  map[string]*device
	bdSeq    uint64
	hasBdSeq bool
	seq      uint8
	hasSeq   bool

	// cost is what the node, its birth and its devices are charged
	// against Options.MaxStateBytes.
	cost int
}

// device is what the Decoder remembers of one device of an online node.
// An offline device is kept without its birth certificate, so that its
// data fails with ErrOffline until it rebirths.
type device struct {
	id      string
	online  bool
	metrics *aliasTable // nil when offline
	lastUse uint64
}

func (v *device) cost() int {
	c := deviceCost + len(v.id)
	if v.metrics != nil {
		c += v.metrics.cost
	}
	return c
}

// Stats counts what a Decoder holds and what it has seen.
type Stats struct {
	// Nodes and Devices are the edge nodes and devices remembered now,
	// online or offline.
	Nodes   int
	Devices int
	// StateBytes is the Decoder's estimate of the memory they take,
	// bounded by Options.MaxStateBytes.
	StateBytes int
	// Evictions counts edge nodes and devices forgotten to stay within
	// Options.
	Evictions uint64
	// SeqGaps counts messages whose seq was not the one expected.
	SeqGaps uint64
	// StaleDeaths counts NDEATH messages ignored for an old bdSeq.
	StaleDeaths uint64
}

// Stats returns the Decoder's counters.
func (d *Decoder) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Nodes = len(d.nodes)
	s.StateBytes = d.cost
	for _, n := range d.nodes {
		s.Devices += len(n.devices)
	}
	return s
}

// NodeInfo is what a Decoder remembers of an edge node.
type NodeInfo struct {
	Group    string
	EdgeNode string
	// Online is true from the edge node's NBIRTH to its NDEATH.
	Online bool
	// BdSeq is the bdSeq of the edge node's last NBIRTH, if HasBdSeq.
	BdSeq    uint64
	HasBdSeq bool
	// Seq is the seq of the edge node's last message, if HasSeq.
	Seq    uint8
	HasSeq bool
	// Metrics is the number of metrics in its NBIRTH.
	Metrics int
	// Devices lists its devices, sorted by ID.
	Devices []DeviceInfo
}

// DeviceInfo is what a Decoder remembers of a device.
type DeviceInfo struct {
	ID     string
	Online bool
	// Metrics is the number of metrics in its DBIRTH.
	Metrics int
}

// Node returns what the Decoder remembers of an edge node, or false if it
// remembers nothing: it has not heard of it, or has evicted it.
func (d *Decoder) Node(group, edgeNode string) (NodeInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.nodes[nodeKey{group, edgeNode}]
	if n == nil {
		return NodeInfo{}, false
	}
	info := NodeInfo{
		Group: group, EdgeNode: edgeNode, Online: n.online,
		BdSeq: n.bdSeq, HasBdSeq: n.hasBdSeq, Seq: n.seq, HasSeq: n.hasSeq,
	}
	if n.metrics != nil {
		info.Metrics = len(n.metrics.byName)
	}
	for _, v := range n.devices {
		di := DeviceInfo{ID: v.id, Online: v.online}
		if v.metrics != nil {
			di.Metrics = len(v.metrics.byName)
		}
		info.Devices = append(info.Devices, di)
	}
	slices.SortFunc(info.Devices, func(a, b DeviceInfo) int { return strings.Compare(a.ID, b.ID) })
	return info, true
}

// charge adds delta bytes to n's cost and the Decoder's.
func (d *Decoder) charge(n *node, delta int) {
	n.cost += delta
	d.cost += delta
}

// addNode starts remembering an edge node, most recently used.
func (d *Decoder) addNode(key nodeKey) *node {
	n := &node{key: key}
	n.elem = d.lru.PushFront(n)
	d.nodes[key] = n
	d.charge(n, nodeCost+len(key.group)+len(key.edgeNode))
	return n
}

// removeNode forgets an edge node and its devices.
func (d *Decoder) removeNode(n *node) {
	d.lru.Remove(n.elem)
	delete(d.nodes, n.key)
	d.cost -= n.cost
}

// touch marks n as the most recently used edge node.
func (d *Decoder) touch(n *node) { d.lru.MoveToFront(n.elem) }

// touchDevice marks v as n's most recently used device.
func (d *Decoder) touchDevice(v *device) {
	d.tick++
	v.lastUse = d.tick
}

// setNodeBirth replaces n's birth certificate (nil for none) and, since
// a new NBIRTH or an NDEATH ends every device's session, forgets its
// devices.
func (d *Decoder) setNodeBirth(n *node, t *aliasTable) {
	delta := 0
	if n.metrics != nil {
		delta -= n.metrics.cost
	}
	for _, v := range n.devices {
		delta -= v.cost()
	}
	if t != nil {
		delta += t.cost
	}
	n.metrics, n.devices, n.online = t, nil, t != nil
	d.charge(n, delta)
}

// setDeviceBirth records v's birth certificate, or forgets it (nil).
func (d *Decoder) setDeviceBirth(n *node, v *device, t *aliasTable) {
	before := v.cost()
	v.metrics, v.online = t, t != nil
	d.charge(n, v.cost()-before)
}

// addDevice starts remembering a device of n, first forgetting n's least
// recently used device if n is at Options.MaxDevicesPerNode.
func (d *Decoder) addDevice(n *node, id string) *device {
	if len(n.devices) >= d.opts.MaxDevicesPerNode {
		d.evictDevice(n, id)
	}
	if n.devices == nil {
		n.devices = make(map[string]*device)
	}
	v := &device{id: id}
	n.devices[id] = v
	d.charge(n, v.cost())
	return v
}

// removeDevice forgets a device of n.
func (d *Decoder) removeDevice(n *node, id string) {
	if v := n.devices[id]; v != nil {
		delete(n.devices, id)
		d.charge(n, -v.cost())
	}
}

// evictDevice forgets n's least recently used device other than keep,
// and reports whether there was one.
func (d *Decoder) evictDevice(n *node, keep string) bool {
	var victim *device
	for id, v := range n.devices {
		if id != keep && (victim == nil || v.lastUse < victim.lastUse) {
			victim = v
		}
	}
	if victim == nil {
		return false
	}
	d.removeDevice(n, victim.id)
	d.stats.Evictions++
	return true
}

// makeRoom evicts until the Decoder is within MaxNodes and MaxStateBytes:
// least recently used edge nodes other than keep first, then keep's least
// recently used devices other than keepDevice. Callers have checked that
// keep's birth certificates alone fit.
func (d *Decoder) makeRoom(keep *node, keepDevice string) {
	for d.cost > d.opts.MaxStateBytes || len(d.nodes) > d.opts.MaxNodes {
		e := d.lru.Back()
		if e != nil && e.Value.(*node) == keep {
			e = e.Prev()
		}
		if e != nil {
			d.removeNode(e.Value.(*node))
			d.stats.Evictions++
			continue
		}
		if !d.evictDevice(keep, keepDevice) {
			return
		}
	}
}
