package uplink

import (
	"context"
	"fmt"
	"time"
)

// class is one priority class's progress in a session. Its records in
// (durable cursor, lastRead] are either queued (read, not yet batched)
// or covered by units, in sequence order.
type class struct {
	p        int
	queue    []Record
	lastRead uint64
	// ahead counts the records read past the durable cursor: queued or
	// in units.
	ahead int
	units []*unit
	// more says the outbox may hold records past lastRead.
	more bool
	// avgSize is the mean size of the records read, for sizing reads.
	avgSize int
	dirty   bool // a unit was acknowledged since the last advance

	// With confirmed delivery (confirm.go): the durable cursors as this
	// session last wrote or read them; tail, the last seq covered by a
	// unit; reach, the highest seq the collector's acks cover
	// contiguously from the confirmed cursor (it may pass synced, when
	// an ack overtakes its PUBACK); ranges, acks not yet contiguous; and
	// rewindDue, set when the confirmations are overdue (no new batches
	// until the class's batches in flight are done, then a rewind).
	synced, confirmed, tail, reach uint64
	ranges                         []span
	rewindDue                      bool
}

// unit is a contiguous span of a class's records after the previous
// unit: a batch awaiting or having had its PUBACK, or records that do
// not leave (local), acknowledged at once.
type unit struct {
	class  *class
	after  uint64 // the seq before the span (the previous unit's last)
	last   uint64 // the span's last seq
	n      int    // records in the span, sent or not
	sent   int    // records in the batch
	acked  bool
	sentAt time.Time
}

// batch is one envelope ready to publish.
type batch struct {
	id      uint64
	topic   string
	payload []byte
	wire    int // bytes of the MQTT PUBLISH packet
	unit    *unit
	records []Record // what it was built from, to put back
}

// session is one connection's sending state, owned by Run's goroutine.
type session struct {
	u        *Uplink
	c        conn
	classes  [Priorities]*class
	inflight map[uint64]*unit
	nextID   uint64
	progress bool
	// Why nothing goes out now, when something is held back.
	hold           event
	throttledUntil time.Time
	lastPoll       time.Time
	warnedKinds    map[string]bool
}

// session sends over c until the connection ends or ctx does, and
// reports whether any batch was acknowledged.
func (u *Uplink) session(ctx context.Context, c conn) (bool, error) {
	s := &session{u: u, c: c, inflight: map[uint64]*unit{}, lastPoll: u.o.Clock.Now(), warnedKinds: map[string]bool{}}
	for p := range s.classes {
		s.classes[p] = &class{p: p, more: true}
	}
	u.drain(u.poke) // a new session reads everything anyway
	if s.confirming() {
		if err := s.startConfirm(); err != nil {
			return false, err
		}
	}
	u.link.up(c)
	for {
		now := u.o.Clock.Now()
		if err := s.pump(now); err != nil {
			return s.progress, err
		}
		u.fire(s.event())
		u.update(func(st *Status) { st.InFlight = len(s.inflight) })

		t := u.o.Clock.NewTimer(max(s.wakeAt(now).Sub(now), 0))
		err := s.wait(ctx, t.C())
		t.Stop()
		if err != nil {
			return s.progress, err
		}
	}
}

// wait handles the next thing to happen: the connection ending, a
// PUBACK, a Poke or Trigger, or the timer.
func (s *session) wait(ctx context.Context, timerC <-chan time.Time) error {
	u, c := s.u, s.c
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.lost():
		if err := c.err(); err != nil {
			return err
		}
		return errLost
	case a := <-c.acks():
		return s.acks(a)
	case <-u.ackc:
		return s.confirmAcks()
	case <-u.poke:
		s.wantMore()
	case <-u.trigger:
		s.wantMore()
	case <-timerC:
		now := u.o.Clock.Now()
		if oldest := s.oldestSent(); !oldest.IsZero() && !now.Before(oldest.Add(u.o.AckTimeout)) {
			return fmt.Errorf("%w (waited %v)", ErrAckTimeout, u.o.AckTimeout)
		}
		if !now.Before(s.lastPoll.Add(u.o.Poll)) {
			s.wantMore()
		}
	}
	return nil
}

// wantMore marks every class as possibly holding new records.
func (s *session) wantMore() {
	for _, c := range s.classes {
		c.more = true
	}
	s.lastPoll = s.u.o.Clock.Now()
}

// acks handles a and every other acknowledgement already waiting, then
// moves the cursors once.
func (s *session) acks(a ack) error {
	for {
		if err := s.ack(a); err != nil {
			return err
		}
		select {
		case a = <-s.c.acks():
			continue
		default:
		}
		return s.advance()
	}
}

func (s *session) ack(a ack) error {
	un, ok := s.inflight[a.id]
	if !ok {
		return nil
	}
	delete(s.inflight, a.id)
	if a.err != nil {
		return fmt.Errorf("batch of %d records: %w", un.sent, a.err)
	}
	un.acked, un.class.dirty = true, true
	s.progress = true
	now := s.u.o.Clock.Now()
	s.u.update(func(st *Status) { st.BatchesAcked++; st.RecordsAcked += uint64(un.sent); st.LastSuccess = now })
	return nil
}

// advance moves each class's durable cursor over its acknowledged
// prefix: a batch acknowledged before an earlier one moves nothing
// until the earlier one is acknowledged too.
func (s *session) advance() error {
	for _, c := range s.classes {
		if !c.dirty {
			continue
		}
		c.dirty = false
		var last uint64
		n := 0
		for n < len(c.units) && c.units[n].acked {
			last = c.units[n].last
			c.ahead -= c.units[n].n
			n++
		}
		if n == 0 {
			continue
		}
		clear(c.units[:n])
		c.units = c.units[n:]
		if err := s.u.o.Outbox.MarkSynced(c.p, last); err != nil {
			return fmt.Errorf("mark class %d synced to %d: %w", c.p, last, err)
		}
		c.synced = last
		if s.confirming() {
			if err := s.confirm(c); err != nil {
				return err
			}
		} else if cf, ok := s.u.o.Outbox.(Confirmer); ok {
			// Broker confirmation: a PUBACK confirms, so retention,
			// which prunes only confirmed records, works as before.
			if _, err := cf.MarkConfirmed(c.p, last); err != nil {
				return fmt.Errorf("mark class %d confirmed to %d: %w", c.p, last, err)
			}
		}
	}
	return nil
}

func (s *session) oldestSent() time.Time {
	var oldest time.Time
	for _, un := range s.inflight {
		if oldest.IsZero() || un.sentAt.Before(oldest) {
			oldest = un.sentAt
		}
	}
	return oldest
}

// event says what the session is doing, for the state machine.
func (s *session) event() event {
	if s.hold != 0 {
		return s.hold
	}
	if len(s.inflight) > 0 || !s.throttledUntil.IsZero() {
		return evWork
	}
	for _, c := range s.classes {
		if len(c.queue) > 0 || c.more {
			return evWork
		}
	}
	return evDrained
}

// wakeAt returns when the session must look again without being told:
// a PUBACK overdue, the bandwidth cap lifting, a schedule window
// opening, midnight for the budget, or the next poll.
func (s *session) wakeAt(now time.Time) time.Time {
	wake := s.lastPoll.Add(s.u.o.Poll)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	if oldest := s.oldestSent(); !oldest.IsZero() {
		earlier(oldest.Add(s.u.o.AckTimeout))
	}
	earlier(s.throttledUntil)
	if s.confirming() {
		for _, c := range s.classes {
			earlier(s.confirmDeadline(c, now))
		}
	}
	local := now.In(s.u.o.Location)
	switch s.hold {
	case evOutsideSchedule:
		earlier(s.u.sched.nextOpen(local))
	case evBudgetExhausted:
		earlier(nextMidnight(local))
	}
	return wake
}

// pump publishes batches while the window has room and the limits
// allow, highest priority class first.
func (s *session) pump(now time.Time) error {
	u := s.u
	local := now.In(u.o.Location)
	s.hold, s.throttledUntil = 0, time.Time{}
	defer func() {
		u.update(func(st *Status) { st.BytesToday = u.budget.used })
	}()
	if s.confirming() {
		if err := s.rewinds(now); err != nil {
			return err
		}
	}
	for len(s.inflight) < u.o.Window {
		if !u.sched.allowed(local) {
			s.hold = evOutsideSchedule
			break
		}
		if u.budget.exhausted(local) {
			s.hold = evBudgetExhausted
			break
		}
		if d := u.bucket.delay(now); d > 0 {
			s.throttledUntil = now.Add(d)
			break
		}
		b, err := s.nextBatch(now, u.budget.remaining(local))
		if err != nil {
			return err
		}
		if b == nil {
			break
		}
		if !u.budget.fits(local, b.wire, b.unit.sent) {
			s.putBack(b)
			s.hold = evBudgetExhausted
			break
		}
		if err := u.budget.add(local, b.wire); err != nil {
			// Not fatal: the cap still holds for this run.
			if u.budget.saveErr == nil {
				u.log.Warn("uplink: bytes sent today not persisted", "err", err)
			}
			u.budget.saveErr = err
		}
		u.bucket.take(now, b.wire)
		b.unit.sentAt = now
		s.inflight[b.id] = b.unit
		s.c.publish(b.topic, b.payload, b.id)
		u.update(func(st *Status) {
			st.BatchesSent++
			st.RecordsSent += uint64(b.unit.sent)
			st.BytesSent += uint64(b.wire)
		})
	}
	return s.advance() // units of local records only
}

// nextBatch builds the next batch from the highest class that has
// records, reading the outbox as needed; nil when there is none.
func (s *session) nextBatch(now time.Time, budgetLeft int64) (*batch, error) {
	limit := s.u.o.BatchBytes
	if budgetLeft < int64(limit) {
		limit = int(max(budgetLeft, 1))
	}
	for p := Priorities - 1; p >= 0; p-- {
		c := s.classes[p]
		if c.rewindDue {
			continue
		}
		if len(c.queue) < s.u.o.BatchRecords && c.more {
			if err := s.refill(c); err != nil {
				return nil, err
			}
		}
		for len(c.queue) > 0 {
			if b := s.build(c, now, limit); b != nil {
				return b, nil
			}
		}
	}
	return nil, nil
}

// refillWindows is how many windows' worth of records one read asks
// for. The outbox returns records from the durable cursor, so each read
// also returns the (up to one window of) records already in flight, and
// skips them: reading four windows at a time decodes each record about
// 1.25 times rather than twice, for a queue of at most four windows of
// batches in memory.
const refillWindows = 4

// refill reads the class's records after lastRead.
func (s *session) refill(c *class) error {
	o := s.u.o
	want := refillWindows * o.BatchRecords * o.Window
	if c.avgSize > 0 {
		want = min(want, max(refillWindows*o.Window*o.BatchBytes/c.avgSize, o.BatchRecords))
	}
	recs, err := o.Outbox.PendingRecords(c.p, c.ahead+want)
	if err != nil {
		return fmt.Errorf("read class %d: %w", c.p, err)
	}
	c.more = len(recs) >= c.ahead+want
	size, n := 0, 0
	for _, r := range recs {
		if r.Seq <= c.lastRead {
			continue
		}
		c.queue = append(c.queue, r)
		c.lastRead = r.Seq
		c.ahead++
		size += len(r.Data)
		n++
	}
	if n > 0 {
		c.avgSize = max(size/n+200, 1) // + the envelope's fields per record
	}
	return nil
}

// build takes the next batch off c's queue: records of one kind (one
// topic), at most BatchRecords and limit bytes of envelope (a record
// larger than limit goes alone), with the local records among them
// passed over. It returns nil when what it took holds nothing to send;
// that unit is then acknowledged at once.
func (s *session) build(c *class, now time.Time, limit int) *batch {
	u := s.u
	var kind, topic string
	taken, sent, local, unroutable := 0, 0, 0, 0
	for taken < len(c.queue) && sent < u.o.BatchRecords {
		r := c.queue[taken]
		if r.Classification == ClassLocal {
			taken, local = taken+1, local+1
			continue
		}
		t, ok := u.topics[r.Kind]
		if !ok {
			if !s.warnedKinds[r.Kind] {
				s.warnedKinds[r.Kind] = true
				u.log.Warn("uplink: records of an unknown kind are not sent", "kind", r.Kind, "seq", r.Seq)
			}
			taken, unroutable = taken+1, unroutable+1
			continue
		}
		if sent > 0 && r.Kind != kind {
			break
		}
		if sent == 0 {
			kind, topic = r.Kind, t
			u.enc.begin(u.o.Device, u.o.Fleet, u.outboxID, kind, now)
		}
		mark := u.enc.add(r)
		if sent > 0 && u.enc.size() > limit {
			u.enc.truncate(mark)
			break
		}
		taken, sent = taken+1, sent+1
	}
	un := &unit{class: c, after: c.tail, last: c.queue[taken-1].Seq, n: taken, sent: sent}
	c.tail = un.last
	records := c.queue[:taken:taken]
	c.queue = c.queue[taken:]
	c.units = append(c.units, un)
	if local+unroutable > 0 {
		u.update(func(st *Status) { st.RecordsLocal += uint64(local); st.RecordsUnroutable += uint64(unroutable) })
	}
	if sent == 0 {
		un.acked, c.dirty = true, true
		if s.confirming() { // nothing to store: confirmed at once
			c.ranges = append(c.ranges, span{un.after, un.last})
		}
		return nil
	}
	var payload []byte
	if s.confirming() {
		payload = u.enc.finish(un.after, un.last)
	} else {
		payload = u.enc.finish(0, 0)
	}
	s.nextID++
	return &batch{id: s.nextID, topic: topic, payload: payload, wire: publishSize(topic, payload),
		unit: un, records: records}
}

// putBack returns a batch that may not go out now to the front of its
// class's queue.
func (s *session) putBack(b *batch) {
	c := b.unit.class
	c.units = c.units[:len(c.units)-1] // b's unit is the class's last
	c.tail = b.unit.after
	c.queue = append(b.records[:len(b.records):len(b.records)], c.queue...)
	s.nextID--
	s.u.update(func(st *Status) {
		for _, r := range b.records {
			if r.Classification == ClassLocal {
				st.RecordsLocal--
			} else if _, ok := s.u.topics[r.Kind]; !ok {
				st.RecordsUnroutable--
			}
		}
	})
}

// publishSize is the size of an MQTT 3.1.1 QoS 1 PUBLISH packet: fixed
// header, remaining length, topic, packet id, payload.
func publishSize(topic string, payload []byte) int {
	rem := 2 + len(topic) + 2 + len(payload)
	n := 1
	for v := rem; ; v >>= 7 {
		n++
		if v < 128 {
			break
		}
	}
	return n + rem
}
