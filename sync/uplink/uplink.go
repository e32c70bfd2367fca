package uplink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ember-edge/ember/internal/mqtturl"
	"github.com/ember-edge/ember/sync/redact"
)

// Uplink sends the outbox upstream. New prepares it, Run runs it; the
// other methods may be called from any goroutine, before, during or
// after Run.
type Uplink struct {
	o       Options
	log     *slog.Logger
	red     *redact.Redactor
	sched   schedule
	topics  map[string]string
	dial    dialFunc
	link    *Link
	trigger chan struct{}
	poke    chan struct{}
	running atomic.Bool

	mu sync.Mutex
	st Status

	// Confirmations from the ack topic (confirm.go), handed from paho's
	// goroutine to Run's.
	ackTopic  string
	ackMu     sync.Mutex
	ackRanges []AckRange
	ackc      chan struct{}

	// Owned by Run's goroutine.
	state    State
	since    time.Time
	backoff  backoff
	bucket   *bucket
	budget   budget
	enc      *encoder
	outboxID string
	cwait    [Priorities]confirmWait
}

// New checks opts and prepares an uplink; nothing connects before Run.
func New(opts Options) (*Uplink, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	red, _ := redact.New(o.Redact) // checked by withDefaults
	sched, _ := parseSchedule(o.Schedule)
	url, _ := mqtturl.Paho(o.URL)
	rnd := o.Rand
	if rnd == nil {
		rnd = mrand.Float64
	}
	log := o.Logger.With("component", "uplink", "broker", o.URL)
	u := &Uplink{
		o: o, log: log, red: red, sched: sched, topics: o.Topics.Resolve(o.Fleet, o.Device),
		link:    &Link{log: log, red: red},
		trigger: make(chan struct{}, 1), poke: make(chan struct{}, 1),
		backoff:  backoff{min: o.BackoffMin, max: o.BackoffMax, rand: rnd},
		bucket:   newBucket(o.Bandwidth),
		budget:   budget{limit: o.DailyBudget, settings: o.Settings},
		enc:      newEncoder(red),
		ackTopic: o.Topics.AckTopic(o.Fleet, o.Device), ackc: make(chan struct{}, 1),
		st: Status{Transitions: map[string]uint64{}},
	}
	d := &pahoDialer{url: url, clientID: o.ClientID, username: o.Username, password: o.Password, tls: o.TLS,
		keepAlive: o.KeepAlive, connectTimeout: o.ConnectTimeout, opTimeout: o.AckTimeout}
	u.dial = d.dial
	return u, nil
}

// Link returns the connection as the fleet updater uses it (the method
// set of sync/fleet.Link).
func (u *Uplink) Link() *Link { return u.link }

// Trigger asks for an attempt now: while offline it dials at once
// instead of waiting out the backoff; while online it looks for records
// at once. Schedule windows and the daily budget still apply. It never
// blocks (for gRPC SyncService.Now and `emberctl sync now`).
func (u *Uplink) Trigger() {
	select {
	case u.trigger <- struct{}{}:
	default:
	}
}

// Now is Trigger.
func (u *Uplink) Now() { u.Trigger() }

// Poke tells the uplink that records were appended: while online they
// go out promptly; while offline it does nothing (a new record is no
// reason to dial before the backoff ends). It never blocks, so the
// daemon may call it after every append.
func (u *Uplink) Poke() {
	select {
	case u.poke <- struct{}{}:
	default:
	}
}

// Run connects and sends until ctx ends, then returns nil. It is the
// only goroutine that touches the connection, the outbox cursors and
// the state.
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer u.running.Store(false)
	u.state, u.since = StateStopped, u.o.Clock.Now()
	for p := range u.cwait { // records unconfirmed at start wait a timeout from now
		u.cwait[p] = confirmWait{since: u.since}
	}
	defer u.fire(evStop)
	if !u.loadSettings(ctx) {
		return nil
	}
	defer u.budget.save()

	announced := false // whether "offline" was logged since the link was last up
	everUp := false
	for {
		u.drain(u.trigger) // this dial answers any Trigger so far
		u.fire(evDial)
		u.update(func(st *Status) { st.DialAttempts++; st.NextAttempt = time.Time{} })
		c, err := u.dial(ctx, u.o.Window)
		if ctx.Err() != nil {
			if c != nil {
				c.close()
			}
			return nil
		}
		if err != nil {
			u.fire(evDialFailed)
			u.update(func(st *Status) { st.LastError = err.Error() })
			if !announced {
				u.log.Info("uplink offline; retrying with backoff", "err", err)
				announced = true
			} else {
				u.log.Debug("uplink dial failed", "err", err)
			}
			if !u.sleep(ctx) {
				return nil
			}
			continue
		}
		u.fire(evConnected)
		u.update(func(st *Status) {
			st.Connects++
			if everUp {
				st.Reconnects++
			}
			st.LastConnected = u.o.Clock.Now()
		})
		u.log.Info("uplink online")
		everUp, announced = true, false
		progress, err := u.session(ctx, c)
		c.close()
		u.link.down()
		u.budget.save()
		if ctx.Err() != nil {
			return nil
		}
		u.fire(evLost)
		u.update(func(st *Status) { st.LastError = err.Error(); st.InFlight = 0 })
		u.log.Info("uplink offline; retrying with backoff", "err", err)
		announced = true
		if progress {
			u.backoff.reset()
		}
		if !u.sleep(ctx) {
			return nil
		}
	}
}

// sleep waits out one backoff step, or until Trigger; false when ctx
// ended.
func (u *Uplink) sleep(ctx context.Context) bool {
	d := u.backoff.next()
	u.update(func(st *Status) { st.NextAttempt = u.o.Clock.Now().Add(d) })
	t := u.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
	case <-u.trigger:
	}
	return true
}

func (u *Uplink) drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// fire feeds e to the state machine, and logs and counts a change.
func (u *Uplink) fire(e event) {
	to := next(u.state, e)
	if to == u.state {
		return
	}
	from, now := u.state, u.o.Clock.Now()
	d := now.Sub(u.since)
	u.state, u.since = to, now
	u.log.Debug("uplink state", "from", from, "to", to, "event", e, "after", d)
	u.update(func(st *Status) {
		st.State, st.Since = to, now
		st.Transitions[from.String()+"->"+to.String()]++
	})
}

// outboxIDKey is the Settings key of the outbox id.
const outboxIDKey = "uplink/outbox_id"

// loadOutboxID returns the outbox's id, making and persisting one the
// first time (before any record is sent with it). Only a key never set
// makes a new id; an error reading it, or storing a new one, is returned,
// so records never leave under an id the next start would not find.
func (u *Uplink) loadOutboxID() (string, error) {
	if u.o.Settings != nil {
		v, err := u.o.Settings.Setting(outboxIDKey)
		switch {
		case err == nil && len(v) > 0:
			return string(v), nil
		case err != nil && !errors.Is(err, u.o.SettingsNotFound):
			return "", fmt.Errorf("read outbox id: %w", err)
		}
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if u.o.Settings != nil {
		if err := u.o.Settings.SetSetting(outboxIDKey, []byte(id)); err != nil {
			return "", fmt.Errorf("store new outbox id: %w", err)
		}
	}
	return id, nil
}

// loadSettings reads the day's byte count and the outbox id, retrying
// with backoff while they cannot be read; false when ctx ended first.
func (u *Uplink) loadSettings(ctx context.Context) bool {
	for {
		u.budget.load(u.o.Clock.Now().In(u.o.Location))
		id, err := u.loadOutboxID()
		if err == nil {
			u.outboxID = id
			u.backoff.reset()
			return true
		}
		u.update(func(st *Status) { st.LastError = err.Error() })
		u.log.Warn("uplink: settings unreadable; retrying with backoff", "err", err)
		if !u.sleep(ctx) {
			return false
		}
	}
}

// errLost is a connection that ended without saying why.
var errLost = errors.New("connection lost")
