package uplink

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Confirmed delivery (Options.Confirm = ConfirmCollector). Each batch
// carries its class span (after, through]; the collector, once it has
// committed the batch, publishes that span on the device's ack topic.
// The device moves its durable confirmed cursor over contiguous spans
// only, and, when a class's sent records wait longer than ConfirmTimeout
// for a confirmation, rewinds the class's sync cursor to the confirmed
// one so that they are sent again.

// span is a class's (after, through].
type span struct{ after, through uint64 }

// confirmWait is a class's wait for confirmations. It lives in the
// Uplink, not the session, so that a link that drops before the
// collector's ack arrives (acks to an offline device are lost) still
// resends after the timeout.
type confirmWait struct {
	since time.Time // the last confirmation, rewind or idle moment
	tries int       // rewinds since the last confirmation
}

// maxConfirmBackoff caps the doubling of ConfirmTimeout (×16).
const maxConfirmBackoff = 4

// onAck is the ack topic's handler (paho's goroutine): it queues the
// ranges of acks for this device and outbox and wakes the session.
func (u *Uplink) onAck(payload []byte) {
	a, err := DecodeAck(payload)
	if err != nil || a.DeviceID != u.o.Device || a.OutboxID != u.outboxID {
		u.update(func(st *Status) { st.AcksIgnored++ })
		if err != nil {
			u.log.Warn("uplink: ack refused", "err", err)
		}
		return
	}
	u.ackMu.Lock()
	u.ackRanges = append(u.ackRanges, a.Ranges...)
	u.ackMu.Unlock()
	u.update(func(st *Status) { st.AcksReceived++ })
	select {
	case u.ackc <- struct{}{}:
	default:
	}
}

// confirming reports whether the session tracks confirmations.
func (s *session) confirming() bool { return s.u.o.Confirm == ConfirmCollector }

// startConfirm reads the cursors and subscribes to the ack topic.
func (s *session) startConfirm() error {
	cf := s.u.o.Outbox.(Confirmer)
	for _, c := range s.classes {
		synced, confirmed, err := cf.Cursors(c.p)
		if err != nil {
			return fmt.Errorf("read class %d cursors: %w", c.p, err)
		}
		c.synced, c.tail, c.confirmed, c.reach = synced, synced, confirmed, confirmed
		c.lastRead = synced
	}
	if err := s.c.subscribe(s.u.ackTopic, s.u.onAck); err != nil {
		return fmt.Errorf("subscribe to the ack topic: %w", err)
	}
	return nil
}

// confirmAcks applies the ranges queued by onAck.
func (s *session) confirmAcks() error {
	u := s.u
	u.ackMu.Lock()
	rs := u.ackRanges
	u.ackRanges = nil
	u.ackMu.Unlock()
	for _, r := range rs {
		c := s.classes[r.Priority]
		if r.Through > c.reach {
			c.ranges = append(c.ranges, span{r.After, r.Through})
		}
	}
	for _, c := range s.classes {
		if err := s.confirm(c); err != nil {
			return err
		}
	}
	return nil
}

// confirm merges c's ranges into its reach and persists the confirmed
// cursor up to the sync cursor.
func (s *session) confirm(c *class) error {
	if len(c.ranges) > 0 {
		slices.SortFunc(c.ranges, func(a, b span) int { return cmp.Compare(a.after, b.after) })
		keep := c.ranges[:0]
		for _, r := range c.ranges {
			switch {
			case r.through <= c.reach:
			case r.after <= c.reach:
				c.reach = r.through
			default:
				keep = append(keep, r)
			}
		}
		c.ranges = keep
	}
	to := min(c.reach, c.synced)
	if to <= c.confirmed {
		return nil
	}
	got, err := s.u.o.Outbox.(Confirmer).MarkConfirmed(c.p, to)
	if err != nil {
		return fmt.Errorf("mark class %d confirmed to %d: %w", c.p, to, err)
	}
	c.confirmed = got
	now := s.u.o.Clock.Now()
	s.u.cwait[c.p] = confirmWait{since: now}
	s.u.update(func(st *Status) { st.LastConfirmed = now })
	return nil
}

// confirmDeadline returns when class c's unconfirmed records are sent
// again, or zero when none wait.
func (s *session) confirmDeadline(c *class, now time.Time) time.Time {
	w := &s.u.cwait[c.p]
	if c.tail <= c.reach { // nothing sent awaits a confirmation
		w.since, w.tries = now, 0
		return time.Time{}
	}
	return w.since.Add(s.u.o.ConfirmTimeout << min(w.tries, maxConfirmBackoff))
}

// rewinds marks classes whose confirmations are overdue, and rewinds
// those with no batch in flight any more.
func (s *session) rewinds(now time.Time) error {
	for _, c := range s.classes {
		if !c.rewindDue {
			if d := s.confirmDeadline(c, now); d.IsZero() || now.Before(d) {
				continue
			}
			c.rewindDue = true
		}
		if len(c.units) > 0 {
			continue // no new batches for c; its last ones drain first
		}
		to, err := s.u.o.Outbox.(Confirmer).Rewind(c.p, c.confirmed)
		if err != nil {
			return fmt.Errorf("rewind class %d to %d: %w", c.p, c.confirmed, err)
		}
		s.u.log.Info("uplink: records not confirmed in time; sending them again", "class", c.p,
			"after", to, "through", c.synced, "timeout", s.u.o.ConfirmTimeout<<min(s.u.cwait[c.p].tries, maxConfirmBackoff))
		c.rewindDue = false
		c.synced, c.tail, c.lastRead, c.queue, c.ahead, c.more = to, to, to, nil, 0, true
		s.u.cwait[c.p] = confirmWait{since: now, tries: s.u.cwait[c.p].tries + 1}
		s.u.update(func(st *Status) { st.Resends++ })
	}
	return nil
}
