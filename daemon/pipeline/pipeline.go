package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/daemon/jsonschema"
	"github.com/ember-edge/ember/daemon/pipeline/guard"
	"github.com/ember-edge/ember/daemon/sparkplug"
	"github.com/ember-edge/ember/daemon/topic"
	"go.yaml.in/yaml/v3"
)

// Pipeline is a compiled pipeline definition. It is safe for concurrent
// use.
type Pipeline struct {
	cfg      config.Pipeline
	deviceID string
	schema   *jsonschema.Schema
	schemaJS json.RawMessage
	paths    map[string]path

	mu       sync.Mutex // guards the templates' per-message context
	prompt   *template.Template
	system   *template.Template
	publish  *template.Template
	errTopic *template.Template
	coalesce *template.Template
	rc       *renderCtx
	// allow lists the topic prefixes a text result may be published
	// under; nil for a json pipeline, which is not limited.
	allow []string
	// static holds the output of templates without actions (the default
	// topics), which need no executing.
	static map[*template.Template]string
}

// Options are what compiling needs besides the definition.
type Options struct {
	DeviceID string
	// MaxPayload refuses larger messages.
	MaxPayload int
}

// Compile checks a pipeline definition and prepares it for use. Its
// errors name the part at fault.
func Compile(cfg config.Pipeline, opts Options) (*Pipeline, error) {
	p := &Pipeline{cfg: cfg, deviceID: opts.DeviceID, paths: map[string]path{}, rc: &renderCtx{}}
	var errs []error
	fail := func(part string, err error) { errs = append(errs, fmt.Errorf("%s: %w", part, err)) }

	for name, expr := range cfg.Fields {
		if cfg.Decode == "json" {
			pth, err := parsePath(expr)
			if err != nil {
				fail("fields."+name, err)
				continue
			}
			p.paths[name] = pth
		} else if expr == "" {
			fail("fields."+name, errors.New("is empty"))
		}
	}
	parse := func(part, text string) *template.Template {
		if text == "" {
			return nil
		}
		t, err := template.New(part).Option("missingkey=error").Funcs(funcs(p.rc)).Parse(text)
		if err != nil {
			fail(part, err)
			return t
		}
		if s, ok := staticText(t); ok {
			if p.static == nil {
				p.static = map[*template.Template]string{}
			}
			p.static[t] = s
		}
		return t
	}
	p.prompt = parse("prompt", cfg.Prompt)
	p.system = parse("system", cfg.System)
	p.coalesce = parse("coalesce.key", cfg.Coalesce.Key)
	// A filter reaching ember's own topics would take its results,
	// errors, status and requests as input, and loop. Checked here as
	// well as in config.Validate because fleet bundles' pipelines are
	// compiled without it.
	if own := topic.DeviceFilter(opts.DeviceID); opts.DeviceID != "" && topic.ValidFilter(cfg.Match) == nil && topic.Overlap(cfg.Match, own) {
		fail("match", fmt.Errorf("filter %q overlaps emberd's own topics (%s)", cfg.Match, own))
	}
	topicT := cfg.Publish.Topic
	if topicT == "" {
		topicT = topic.Result(opts.DeviceID, cfg.Name)
	}
	p.publish = parse("publish.topic", topicT)
	errT := cfg.Publish.ErrorTopic
	if errT == "" {
		errT = topic.Error(opts.DeviceID, cfg.Name)
	}
	p.errTopic = parse("publish.error_topic", errT)
	if !strings.Contains(topicT, "{{") && topic.Match(cfg.Match, topicT) {
		fail("publish.topic", fmt.Errorf("%q matches the pipeline's own filter %q: results would loop back as input", topicT, cfg.Match))
	}
	if cfg.Output.Format != "json" {
		p.allow = allowList(cfg.Publish.Allow, opts.DeviceID)
		// The text before the first action is fixed: if no allowed prefix
		// can extend it or be extended by it, no message could publish.
		fixed, _, _ := strings.Cut(topicT, "{{")
		if !slices.ContainsFunc(p.allow, func(a string) bool { return strings.HasPrefix(fixed, a) || strings.HasPrefix(a, fixed) }) ||
			(!strings.Contains(topicT, "{{") && !allowedTopic(p.allow, topicT)) {
			fail("publish.topic", fmt.Errorf("%q is outside publish.allow %q: a text pipeline publishes free text, which only goes under allowed prefixes", topicT, p.allow))
		}
	}
	if cfg.Output.Format == "json" {
		schema, js, err := compileSchema(cfg.Output.Schema)
		if err != nil {
			fail("output.schema", err)
		}
		p.schema, p.schemaJS = schema, js
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("pipeline %q: %w", cfg.Name, errors.Join(errs...))
	}
	return p, nil
}

// compileSchema turns the config's YAML schema into JSON and compiles it.
// A json output without a schema accepts any JSON object.
func compileSchema(n yaml.Node) (*jsonschema.Schema, json.RawMessage, error) {
	js := []byte(`{"type":"object"}`)
	if n.Kind != 0 {
		var err error
		if js, err = jsonschema.FromYAML(&n); err != nil {
			return nil, nil, err
		}
	}
	s, err := jsonschema.Compile(js)
	return s, js, err
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.cfg.Name }

// Config returns the definition the pipeline was compiled from.
func (p *Pipeline) Config() config.Pipeline { return p.cfg }

// Schema returns the output schema of a json pipeline, or nil.
func (p *Pipeline) Schema() *jsonschema.Schema { return p.schema }

// Matches reports whether the pipeline takes messages on this topic.
func (p *Pipeline) Matches(t string) bool { return topic.Match(p.cfg.Match, t) }

// Message is an MQTT message as the brokers hand it over.
type Message struct {
	Broker  string // "embedded" or "external"
	Topic   string
	Payload []byte
	QoS     byte
	Dup     bool
	Client  string // the publisher's client id (embedded broker)
	// PacketID identifies a QoS 1 message on its connection.
	PacketID uint16
	// ResponseTopic and CorrelationData are MQTT 5 request/response
	// properties.
	ResponseTopic   string
	CorrelationData []byte
	// MayPublish reports whether the publisher may itself publish to a
	// topic (its ACL on the embedded broker). Nil where the broker does
	// not say (an external broker): only ember's own reply topics are
	// then open to a direct request's reply.
	MayPublish func(topic string) bool
	Received   time.Time
	// Sparkplug is the decoded Sparkplug B message, when the topic is one
	// and a pipeline decodes Sparkplug; SparkplugErr is why it could not
	// be decoded.
	Sparkplug    *sparkplug.Message
	SparkplugErr error
}

// Prepared is a message turned into a job's request.
type Prepared struct {
	Request     Request
	DedupKey    string
	CoalesceKey string
}

// Prepare decodes the message, extracts its fields and renders the
// request. An error wraps ErrInput (an *InputError) with the reason.
func (p *Pipeline) Prepare(msg Message, maxPayload int) (Prepared, error) {
	name := p.cfg.Name
	if maxPayload > 0 && len(msg.Payload) > maxPayload {
		return Prepared{}, inputErr(name, fmt.Sprintf("payload is %d bytes, over the limit of %d", len(msg.Payload), maxPayload), nil)
	}
	fields, meta, whole, err := p.decode(msg)
	if err != nil {
		return Prepared{}, err
	}
	var id string
	if p.cfg.ID != "" {
		v, err := lookupID(fields, whole, p.cfg.ID)
		if err != nil {
			return Prepared{}, inputErr(name, fmt.Sprintf("id field %q", p.cfg.ID), err)
		}
		id = fmt.Sprint(v)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.rc.topic, p.rc.meta = msg.Topic, meta
	data := wrap(fields)
	render := func(t *template.Template) (string, error) {
		if t == nil {
			return "", nil
		}
		if s, ok := p.static[t]; ok {
			return s, nil
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return "", inputErr(name, t.Name()+" template failed", err)
		}
		return b.String(), nil
	}
	promptText, err := render(p.prompt)
	if err != nil {
		return Prepared{}, err
	}
	systemText, err := render(p.system)
	if err != nil {
		return Prepared{}, err
	}
	pubTopic, err := render(p.publish)
	if err != nil {
		return Prepared{}, err
	}
	errTopic, err := render(p.errTopic)
	if err != nil {
		return Prepared{}, err
	}
	coalesceKey, err := render(p.coalesce)
	if err != nil {
		return Prepared{}, err
	}
	if pubTopic, err = p.topicName("publish.topic", pubTopic); err != nil {
		return Prepared{}, err
	}
	if errTopic, err = p.topicName("publish.error_topic", errTopic); err != nil {
		return Prepared{}, err
	}
	prompt := segments(promptText)
	if len(prompt) == 0 {
		return Prepared{}, inputErr(name, "the prompt rendered empty", nil)
	}
	systemSegs := segments(systemText)
	var report *guard.Report
	if p.cfg.Guard != "off" {
		rep := guard.Scan(guardTexts(msg.Topic, fields, prompt, systemSegs)...)
		if rep.Flagged() {
			if p.cfg.Guard == "quarantine" {
				return Prepared{}, &InputError{Pipeline: name, Err: ErrQuarantined,
					Reason: fmt.Sprintf("quarantined by the guard: the message's data reads like instructions to the model (score %d: %s)", rep.Score, strings.Join(rep.Matched, ", "))}
			}
			report = &rep
		}
	}
	if err := p.allowed(pubTopic); err != nil {
		return Prepared{}, err
	}
	req := Request{
		Model:     p.cfg.Model,
		System:    plain(systemSegs),
		Prompt:    prompt,
		Raw:       p.cfg.Raw,
		MaxTokens: p.cfg.MaxTokens,
		Params: Params{
			Temperature: p.cfg.Params.Temperature, TopK: p.cfg.Params.TopK, TopP: p.cfg.Params.TopP,
			MinP: p.cfg.Params.MinP, RepeatPenalty: p.cfg.Params.RepeatPenalty, Seed: p.cfg.Params.Seed,
			Stop: p.cfg.Params.Stop,
		},
		Output: Output{Format: p.cfg.Output.Format, Schema: p.schemaJS},
		Reply: Reply{
			Broker: msg.Broker, Topic: pubTopic, QoS: byte(*p.cfg.Publish.QoS), Retain: p.cfg.Publish.Retain,
			ErrorTopic: errTopic,
		},
		Input:          fields,
		Topic:          msg.Topic,
		RequestID:      id,
		Classification: p.cfg.Classification,
		Guard:          report,
	}
	prep := Prepared{Request: req, CoalesceKey: plain(segments(coalesceKey))}
	if id != "" {
		prep.DedupKey = name + "\x00" + id
	}
	return prep, nil
}

// topicName turns a rendered topic template into a topic name. A value
// from the message fills at most part of one level: one that holds a '/'
// (it would add levels), a wildcard, a NUL, or that starts the topic
// with '$' (the broker's reserved levels) refuses the message. Refusing,
// rather than escaping, keeps a topic the operator can predict from the
// template, and the dead letter says which value was at fault.
func (p *Pipeline) topicName(part, rendered string) (string, error) {
	var b strings.Builder
	for _, s := range segments(rendered) {
		if s.Data {
			if i := strings.IndexAny(s.Text, "/+#\x00"); i >= 0 {
				return "", inputErr(p.cfg.Name, fmt.Sprintf("%s: a value from the message holds %q, which would add a topic level or a wildcard", part, s.Text[i:i+1]), nil)
			}
			if b.Len() == 0 && strings.HasPrefix(s.Text, "$") {
				return "", inputErr(p.cfg.Name, fmt.Sprintf("%s: a value from the message starts the topic with \"$\", the broker's reserved levels", part), nil)
			}
		}
		b.WriteString(s.Text)
	}
	t := b.String()
	if err := topic.ValidName(t); err != nil {
		return "", inputErr(p.cfg.Name, "rendered "+part+" is not a valid topic", err)
	}
	return t, nil
}

// allowList is a text pipeline's publish.allow with {device} filled in;
// ember's own topics (ember/v1/<device>/) when it is empty.
func allowList(allow []string, deviceID string) []string {
	if len(allow) == 0 {
		return []string{topic.Device(deviceID) + "/"}
	}
	out := make([]string, len(allow))
	for i, a := range allow {
		out[i] = strings.ReplaceAll(a, "{device}", deviceID)
	}
	return out
}

// allowedTopic reports whether t is under one of the prefixes. A prefix
// ending in "/" takes the topics below it; one that does not also takes
// the topic it names ("plant/ai" takes plant/ai and plant/ai/x, never
// plant/aix).
func allowedTopic(prefixes []string, t string) bool {
	for _, a := range prefixes {
		base := strings.TrimSuffix(a, "/")
		if strings.HasPrefix(t, base+"/") || (!strings.HasSuffix(a, "/") && t == a) {
			return true
		}
	}
	return false
}

// allowed refuses a text result's rendered topic outside publish.allow.
func (p *Pipeline) allowed(t string) error {
	if p.allow == nil || allowedTopic(p.allow, t) {
		return nil
	}
	return inputErr(p.cfg.Name, fmt.Sprintf("publish.topic %q is outside publish.allow %q (a text pipeline may publish only under allowed prefixes)", t, p.allow), nil)
}

// staticText returns what t writes when it is text alone.
func staticText(t *template.Template) (string, bool) {
	if t.Tree == nil || t.Tree.Root == nil {
		return "", false
	}
	var b strings.Builder
	for _, n := range t.Tree.Root.Nodes {
		text, ok := n.(*parse.TextNode)
		if !ok {
			return "", false
		}
		b.Write(text.Text)
	}
	return b.String(), true
}

// ErrorTopic renders the error topic for a message that could not be
// prepared (its fields may be missing, so only the topic is known).
func (p *Pipeline) ErrorTopic(msgTopic string) string {
	if p.cfg.Publish.ErrorTopic == "" || strings.Contains(p.cfg.Publish.ErrorTopic, "{{") {
		return topic.Error(p.deviceID, p.cfg.Name)
	}
	return p.cfg.Publish.ErrorTopic
}

// decode returns the fields templates see, Sparkplug metadata, and the
// whole decoded payload (what an id outside the fields is looked up in).
func (p *Pipeline) decode(msg Message) (fields, meta map[string]any, whole any, err error) {
	name := p.cfg.Name
	switch p.cfg.Decode {
	case "text":
		if !utf8.Valid(msg.Payload) {
			return nil, nil, nil, inputErr(name, "payload is not valid UTF-8", nil)
		}
		if bytes.IndexByte(msg.Payload, 0) >= 0 {
			return nil, nil, nil, inputErr(name, "payload contains a NUL byte", nil)
		}
		return map[string]any{"text": string(msg.Payload)}, nil, nil, nil
	case "sparkplugb":
		if msg.SparkplugErr != nil {
			return nil, nil, nil, inputErr(name, "Sparkplug B payload cannot be decoded", msg.SparkplugErr)
		}
		if msg.Sparkplug == nil {
			return nil, nil, nil, inputErr(name, "not a Sparkplug B message", nil)
		}
		sp := msg.Sparkplug
		meta := map[string]any{
			"type": sp.Type.String(), "group": sp.Topic.Group, "edge_node": sp.Topic.EdgeNode, "device": sp.Topic.Device,
		}
		if !sp.Timestamp.IsZero() {
			meta["timestamp"] = sp.Timestamp.UTC().Format(time.RFC3339Nano)
		}
		all := normalize(sp.Fields())
		if len(p.cfg.Fields) == 0 {
			return all, meta, all, nil
		}
		out := map[string]any{}
		for field, metric := range p.cfg.Fields {
			v, ok := all[metric]
			if !ok {
				return nil, nil, nil, inputErr(name, fmt.Sprintf("field %q: metric %q is not in the message", field, metric), nil)
			}
			out[field] = v
		}
		return out, meta, all, nil
	default: // json
		if !utf8.Valid(msg.Payload) {
			return nil, nil, nil, inputErr(name, "payload is not valid UTF-8", nil)
		}
		dec := json.NewDecoder(bytes.NewReader(msg.Payload))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			return nil, nil, nil, inputErr(name, "payload is not valid JSON", err)
		}
		if dec.More() {
			return nil, nil, nil, inputErr(name, "payload is not valid JSON", errors.New("data after the first value"))
		}
		if len(p.paths) == 0 {
			if m, ok := doc.(map[string]any); ok {
				return normalizeMap(m), nil, doc, nil
			}
			return map[string]any{"value": normalizeValue(doc)}, nil, doc, nil
		}
		out := map[string]any{}
		for field, pth := range p.paths {
			v, err := pth.lookup(doc)
			if err != nil {
				return nil, nil, nil, inputErr(name, fmt.Sprintf("field %q (%s)", field, p.cfg.Fields[field]), err)
			}
			out[field] = normalizeValue(v)
		}
		return out, nil, doc, nil
	}
}

// normalize converts Sparkplug values into what JSON and templates take.
func normalize(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		switch x := v.(type) {
		case time.Time:
			out[k] = x.UTC().Format(time.RFC3339Nano)
		case []byte:
			out[k] = fmt.Sprintf("%x", x)
		case int64:
			out[k] = json.Number(fmt.Sprint(x))
		case uint64:
			out[k] = json.Number(fmt.Sprint(x))
		case float32:
			out[k] = json.Number(fmt.Sprint(x))
		case float64:
			out[k] = json.Number(fmt.Sprint(x))
		default:
			out[k] = normalizeValue(v)
		}
	}
	return out
}

func normalizeMap(m map[string]any) map[string]any {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
	return m
}

// normalizeValue keeps numbers as json.Number (exact) and recurses.
func normalizeValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return normalizeMap(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
		return x
	case []map[string]any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalizeMap(x[i])
		}
		return out
	}
	return v
}

// lookupField finds an id value: a field name first, then a path.
// lookupID finds a request id: an extracted field by name, else a path
// into the fields, else (when fields were extracted, so the payload holds
// more than they do) a path into the whole payload or a Sparkplug metric.
func lookupID(fields map[string]any, whole any, expr string) (any, error) {
	if v, ok := fields[expr]; ok {
		return v, nil
	}
	if m, ok := whole.(map[string]any); ok {
		if v, ok := m[expr]; ok {
			return normalizeValue(v), nil
		}
	}
	pth, err := parsePath(expr)
	if err != nil {
		return nil, err
	}
	v, err := pth.lookup(fields)
	if err != nil && whole != nil {
		if wv, werr := pth.lookup(whole); werr == nil {
			return normalizeValue(wv), nil
		}
	}
	return v, err
}
