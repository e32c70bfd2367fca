package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/sparkplug"
	"github.com/ember-edge/ember/daemon/topic"
)

// Set is the one owner of the running pipelines: the config file's
// (local) with the active fleet release's over them. Either side can
// change (a reload, an update); the set is then compiled from both and
// swapped whole, so every message sees one consistent snapshot, and
// subscribers (the MQTT client's subscriptions, the dispatcher) are told.
// It is safe for concurrent use.
type Set struct {
	deviceID string

	mu           sync.Mutex // serialises changes
	local, fleet []config.Pipeline

	cur atomic.Pointer[Snapshot]
	// requests is whether the direct request topic is on
	// (mqtt.requests.enabled).
	requests atomic.Bool

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{}
}

// NewSet returns an empty set for a device.
func NewSet(deviceID string) *Set {
	s := &Set{deviceID: deviceID, subs: map[chan struct{}]struct{}{}}
	s.cur.Store(newSnapshot(nil))
	return s
}

// SetLocal replaces the config file's pipelines and returns the names of
// every running pipeline. On error the running set stays as it was.
func (s *Set) SetLocal(defs []config.Pipeline) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.swap(defs, s.fleet)
	if err != nil {
		return nil, err
	}
	return snap.Names(), nil
}

// SetFleet replaces the fleet release's pipelines (nil: none). On error
// the running set stays as it was.
func (s *Set) SetFleet(defs []config.Pipeline) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.swap(s.local, defs)
	return err
}

// CheckFleet reports whether SetFleet would accept defs, without
// installing them.
func (s *Set) CheckFleet(defs []config.Pipeline) error {
	s.mu.Lock()
	local := s.local
	s.mu.Unlock()
	if err := keepsLocalLocal(local, defs); err != nil {
		return err
	}
	_, err := CompileAll(Merge(local, defs), s.deviceID)
	return err
}

// swap compiles local with fromFleet over it and installs the result.
func (s *Set) swap(local, fromFleet []config.Pipeline) (*Snapshot, error) {
	if err := keepsLocalLocal(local, fromFleet); err != nil {
		return nil, err
	}
	ps, err := CompileAll(Merge(local, fromFleet), s.deviceID)
	if err != nil {
		return nil, err
	}
	s.local, s.fleet = local, fromFleet
	snap := newSnapshot(ps)
	s.cur.Store(snap)
	s.notify()
	return snap, nil
}

// EnableRequests turns the direct request topic
// (ember/v1/<device>/infer/<model>) on or off; it is off in a new Set.
// Off, Filters leaves it out and Wants and RequestModel refuse it, so a
// message there is only passed on by the broker, never run.
func (s *Set) EnableRequests(on bool) {
	if s.requests.Swap(on) != on {
		s.notify()
	}
}

// Snapshot returns the running pipelines. It never changes: a change
// installs a new snapshot.
func (s *Set) Snapshot() *Snapshot { return s.cur.Load() }

// Filters returns every topic filter ember must receive on: the direct
// request topic when requests are enabled, each pipeline's match, and the Sparkplug namespace when
// a pipeline decodes Sparkplug (its births and deaths carry state).
func (s *Set) Filters() []string {
	snap := s.Snapshot()
	var out []string
	if s.requests.Load() {
		out = append(out, topic.RequestFilter(s.deviceID))
	}
	for _, p := range snap.list {
		out = append(out, p.cfg.Match)
	}
	if snap.sparkplug {
		out = append(out, sparkplug.Namespace+"/#")
	}
	return out
}

// Wants reports whether ember takes messages on this topic.
func (s *Set) Wants(t string) bool {
	if _, ok := s.RequestModel(t); ok {
		return true
	}
	snap := s.Snapshot()
	if snap.Sparkplug() && IsSparkplug(t) {
		return true
	}
	return snap.Matches(t)
}

// RequestModel returns the model level of a direct request topic; false
// when t is not one or requests are disabled.
func (s *Set) RequestModel(t string) (string, bool) {
	if !s.requests.Load() {
		return "", false
	}
	model, ok := strings.CutPrefix(t, topic.RequestPrefix(s.deviceID))
	return model, ok && !strings.Contains(model, "/")
}

// IsSparkplug reports whether a topic is in the Sparkplug B namespace.
func IsSparkplug(t string) bool { return strings.HasPrefix(t, sparkplug.Namespace+"/") }

// Changed returns a channel that receives after every change, and a
// function that stops it. Changes in quick succession may arrive as one.
func (s *Set) Changed() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subsMu.Lock()
	s.subs[ch] = struct{}{}
	s.subsMu.Unlock()
	return ch, func() {
		s.subsMu.Lock()
		delete(s.subs, ch)
		s.subsMu.Unlock()
	}
}

func (s *Set) notify() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default: // one pending notice covers this change too
		}
	}
}

// Snapshot is an immutable set of compiled pipelines.
type Snapshot struct {
	list      []*Pipeline
	byName    map[string]*Pipeline
	sparkplug bool
}

func newSnapshot(ps []*Pipeline) *Snapshot {
	snap := &Snapshot{list: ps, byName: make(map[string]*Pipeline, len(ps))}
	for _, p := range ps {
		snap.byName[p.Name()] = p
		if p.cfg.Decode == "sparkplugb" {
			snap.sparkplug = true
		}
	}
	return snap
}

// List returns the pipelines in definition order.
func (s *Snapshot) List() []*Pipeline { return s.list }

// Get returns the pipeline called name.
func (s *Snapshot) Get(name string) (*Pipeline, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Sparkplug reports whether a pipeline decodes Sparkplug B.
func (s *Snapshot) Sparkplug() bool { return s.sparkplug }

// Names returns the pipelines' names in definition order.
func (s *Snapshot) Names() []string {
	out := make([]string, len(s.list))
	for i, p := range s.list {
		out[i] = p.Name()
	}
	return out
}

// Matches reports whether any pipeline takes messages on this topic.
func (s *Snapshot) Matches(t string) bool {
	for _, p := range s.list {
		if p.Matches(t) {
			return true
		}
	}
	return false
}

// CompileAll compiles definitions, returning every problem found.
func CompileAll(defs []config.Pipeline, deviceID string) ([]*Pipeline, error) {
	var out []*Pipeline
	var errs []error
	for _, d := range defs {
		p, err := Compile(d, Options{DeviceID: deviceID})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// ErrDeclassify is returned when a fleet bundle would replace a pipeline
// the device classifies local with one that is not: data the site keeps
// must not start leaving because a bundle said so.
var ErrDeclassify = errors.New("a fleet bundle cannot make a local pipeline shared")

func keepsLocalLocal(local, fromFleet []config.Pipeline) error {
	isLocal := map[string]bool{}
	for _, p := range local {
		if (Request{Classification: p.Classification}).Class() == ClassLocal {
			isLocal[p.Name] = true
		}
	}
	var errs []error
	for _, p := range fromFleet {
		if isLocal[p.Name] && (Request{Classification: p.Classification}).Class() != ClassLocal {
			errs = append(errs, fmt.Errorf("pipeline %q: %w (the device's config classifies it local; the bundle says %q)", p.Name, ErrDeclassify, p.Classification))
		}
	}
	return errors.Join(errs...)
}

// Merge puts the fleet's pipelines over the config's: a fleet bundle
// manages pipelines centrally, so on a name clash it wins.
func Merge(local, fromFleet []config.Pipeline) []config.Pipeline {
	byName := map[string]bool{}
	for _, p := range fromFleet {
		byName[p.Name] = true
	}
	out := append([]config.Pipeline(nil), fromFleet...)
	for _, p := range local {
		if !byName[p.Name] {
			out = append(out, p)
		}
	}
	return out
}
