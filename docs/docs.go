// Package docs embeds the documents the binary serves: the OpenAPI 3
// description of the HTTP API (openapi.yaml, served at /v1/openapi.yaml).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
