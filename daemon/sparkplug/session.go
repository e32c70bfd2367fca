package sparkplug

import (
	"fmt"

	sparkplugb "github.com/ember-edge/ember/protos/sparkplug/b/v1"
)

// apply updates the Decoder's record of the message's edge node and
// device as its type says, checks its sequence number, and finds the
// birth definition of each of its metrics. It returns one definition per
// metric of p, or nil where none is needed (births, deaths).
//
// birth and birthErr are the result of newAliasTable for NBIRTH and
// DBIRTH, built before the lock was taken.
func (d *Decoder) apply(t Topic, p *sparkplugb.Payload, msg *Message, birth *aliasTable, birthErr error) ([]*metricDef, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := nodeKey{t.Group, t.EdgeNode}
	n := d.nodes[key]
	switch t.Type {
	case NBIRTH:
		return nil, d.nodeBirth(key, n, p, msg, birth, birthErr)
	case NDEATH:
		d.nodeDeath(n, p, msg)
		return nil, nil
	case NCMD, DCMD:
		return d.command(t, n, p)
	case DDEATH:
		d.deviceDeath(t, n, msg)
		return nil, nil
	}

	// NDATA, DBIRTH and DDATA belong to the edge node's current session.
	if n == nil {
		return nil, failf(ErrNoBirth, "edge node %s/%s", t.Group, t.EdgeNode)
	}
	d.touch(n)
	if !n.online {
		return nil, failf(ErrOffline, "edge node %s/%s sent NDEATH", t.Group, t.EdgeNode)
	}
	d.advance(n, msg)
	switch t.Type {
	case NDATA:
		return resolveAll(n.metrics, p)
	case DBIRTH:
		return nil, d.deviceBirth(t, n, birth, birthErr)
	}
	v := n.devices[t.Device]
	if v == nil {
		return nil, failf(ErrNoBirth, "device %q", t.Device)
	}
	if !v.online {
		return nil, failf(ErrOffline, "device %q sent DDEATH", t.Device)
	}
	d.touchDevice(v)
	return resolveAll(v.metrics, p)
}

// nodeBirth starts a new session of an edge node: a new birth certificate,
// bdSeq and seq, and no devices until their DBIRTHs. A birth that cannot
// be used ends the old session all the same, since the edge node has
// left it; its data then fails until a good birth arrives.
func (d *Decoder) nodeBirth(key nodeKey, n *node, p *sparkplugb.Payload, msg *Message, birth *aliasTable, birthErr error) error {
	if birthErr == nil {
		if need := nodeCost + len(key.group) + len(key.edgeNode) + birth.cost; need > d.opts.MaxStateBytes {
			birthErr = failf(ErrTooLarge, "birth certificate needs about %d bytes of state, more than %d", need, d.opts.MaxStateBytes)
		}
	}
	if birthErr != nil {
		if n != nil {
			d.removeNode(n)
		}
		return birthErr
	}
	if n == nil {
		n = d.addNode(key)
	} else {
		d.touch(n)
	}
	d.setNodeBirth(n, birth)
	n.bdSeq, n.hasBdSeq = bdSeq(p.GetMetrics())
	n.seq, n.hasSeq = msg.Seq, msg.HasSeq
	d.makeRoom(n, "")
	return nil
}

// nodeDeath ends an edge node's session, unless the death is stale: its
// bdSeq is not that of the current birth, so it is the will message of an
// earlier MQTT session that the broker delivered late. A death that
// cannot be paired (the birth had no bdSeq) is applied; a death without
// bdSeq after a birth with one cannot be shown to belong to the current
// session, and is ignored. Deaths never fail: an unknown edge node has
// nothing to forget.
func (d *Decoder) nodeDeath(n *node, p *sparkplugb.Payload, msg *Message) {
	if n == nil {
		return
	}
	d.touch(n)
	seq, ok := bdSeq(p.GetMetrics())
	if n.hasBdSeq && (!ok || seq != n.bdSeq) {
		msg.Stale = true
		d.stats.StaleDeaths++
		return
	}
	d.setNodeBirth(n, nil)
	n.hasSeq = false
}

// deviceBirth records a device's birth certificate. Like nodeBirth, an
// unusable birth forgets the device.
func (d *Decoder) deviceBirth(t Topic, n *node, birth *aliasTable, birthErr error) error {
	if birthErr == nil {
		need := n.cost - d.devicesCost(n) + deviceCost + len(t.Device) + birth.cost
		if need > d.opts.MaxStateBytes {
			birthErr = failf(ErrTooLarge, "birth certificate needs about %d bytes of state with its edge node's, more than %d", need, d.opts.MaxStateBytes)
		}
	}
	if birthErr != nil {
		d.removeDevice(n, t.Device)
		return birthErr
	}
	v := n.devices[t.Device]
	if v == nil {
		v = d.addDevice(n, t.Device)
	}
	d.touchDevice(v)
	d.setDeviceBirth(n, v, birth)
	d.makeRoom(n, t.Device)
	return nil
}

// devicesCost returns the part of n's cost that its devices take.
func (d *Decoder) devicesCost(n *node) int {
	c := 0
	for _, v := range n.devices {
		c += v.cost()
	}
	return c
}

// deviceDeath ends a device's session. Like nodeDeath it never fails: a
// device or edge node that is unknown or already offline has nothing to
// forget.
func (d *Decoder) deviceDeath(t Topic, n *node, msg *Message) {
	if n == nil || !n.online {
		return
	}
	d.touch(n)
	d.advance(n, msg)
	if v := n.devices[t.Device]; v != nil {
		d.touchDevice(v)
		d.setDeviceBirth(n, v, nil)
	}
}

// command resolves the metrics of an NCMD or DCMD against the birth
// certificate on record, if any. Commands come from host applications,
// not the edge node: they carry no seq of the edge node's and change
// nothing.
func (d *Decoder) command(t Topic, n *node, p *sparkplugb.Payload) ([]*metricDef, error) {
	var table *aliasTable
	if n != nil && n.online {
		table = n.metrics
		if t.Type == DCMD {
			table = nil
			if v := n.devices[t.Device]; v != nil {
				table = v.metrics
			}
		}
	}
	defs := make([]*metricDef, len(p.GetMetrics()))
	for i, pm := range p.GetMetrics() {
		def, err := table.resolveCommand(pm)
		if err != nil {
			return nil, fmt.Errorf("metric %d: %w", i, err)
		}
		defs[i] = def
	}
	return defs, nil
}

// resolveAll resolves every metric of a data message against a birth
// certificate. One unresolvable metric fails the message: the birth on
// record no longer describes what the edge node sends, so the rest of
// its aliases are suspect too.
func resolveAll(table *aliasTable, p *sparkplugb.Payload) ([]*metricDef, error) {
	defs := make([]*metricDef, len(p.GetMetrics()))
	for i, pm := range p.GetMetrics() {
		def, err := table.resolve(pm)
		if err != nil {
			return nil, fmt.Errorf("metric %d: %w", i, err)
		}
		defs[i] = def
	}
	return defs, nil
}

// advance checks msg's seq against the one expected after n's last
// message, records a gap in msg, and makes msg's seq the last. The check
// is skipped when either is missing, as after an NDEATH.
func (d *Decoder) advance(n *node, msg *Message) {
	if !msg.HasSeq {
		return
	}
	if n.hasSeq {
		if want := n.seq + 1; msg.Seq != want {
			msg.Gap = &SeqGap{Expected: want, Got: msg.Seq}
			d.stats.SeqGaps++
		}
	}
	n.seq, n.hasSeq = msg.Seq, true
}
