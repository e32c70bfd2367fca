package jobs

import (
	"crypto/sha256"
	"encoding/json"
	"sync"

	"github.com/ember-edge/ember/daemon/jsonschema"
)

// schemaCache compiles each distinct output schema once: jobs carry their
// schema as JSON, and a pipeline's jobs all carry the same one.
type schemaCache struct {
	mu sync.Mutex
	m  map[[32]byte]*jsonschema.Schema
}

func (c *schemaCache) get(schema json.RawMessage) (*jsonschema.Schema, error) {
	if len(schema) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	key := sha256.Sum256(schema)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[key]; ok {
		return s, nil
	}
	s, err := jsonschema.Compile(schema)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) > 256 {
		c.m = map[[32]byte]*jsonschema.Schema{}
	}
	c.m[key] = s
	return s, nil
}
