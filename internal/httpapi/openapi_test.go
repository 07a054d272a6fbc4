package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/smartgroups/smartgroups/docs"
)

// The OpenAPI checks are declared here, in the package's own tests, so that
// the tests of both test packages (this one's harness and the end-to-end
// tests of httpapi_test) validate what they send and receive against
// docs/openapi.yaml.

var (
	oaOnce   sync.Once
	oaDoc    *openapi3.T
	oaRouter routers.Router
	oaErr    error
)

// OpenAPI returns docs/openapi.yaml, loaded and validated as an OpenAPI 3
// document, and a router over its operations.
func OpenAPI() (*openapi3.T, routers.Router, error) {
	oaOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(docs.OpenAPI)
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err == nil {
			oaRouter, err = legacy.NewRouter(doc)
		}
		oaDoc, oaErr = doc, err
	})
	return oaDoc, oaRouter, oaErr
}

// ValidateExchange checks an exchange against docs/openapi.yaml: the
// response's status must be documented for the operation and its body must
// match the schema; requests answered with 2xx must match too. Exchanges on
// paths the document does not describe (deliberate 404/405 probes) are
// skipped.
func ValidateExchange(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	_, router, err := OpenAPI()
	if err != nil {
		return fmt.Errorf("openapi document: %w", err)
	}
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s %s is not in the OpenAPI document: %w", req.Method, req.URL.Path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("request %s %s does not match the document: %w", req.Method, req.URL, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d to %s %s does not match the document: %w\nbody: %s", status, req.Method, req.URL, err, truncate(body))
	}
	return nil
}

// ValidateRequest checks a request (method, URL with its query, headers,
// body) against the operation the document describes for it, and returns
// that operation's id.
func ValidateRequest(method, url string, header http.Header, body []byte) (string, error) {
	_, router, err := OpenAPI()
	if err != nil {
		return "", fmt.Errorf("openapi document: %w", err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("request %s %s: %w", method, url, err)
	}
	req.Header = header.Clone()
	route, params, err := router.FindRoute(req)
	if err != nil {
		return "", fmt.Errorf("%s %s is not in the OpenAPI document: %w", method, req.URL.Path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		return "", fmt.Errorf("request %s %s does not match the document: %w", method, url, err)
	}
	return route.Operation.OperationID, nil
}

// ValidateSchema checks a JSON document against one of the document's
// component schemas.
func ValidateSchema(name string, raw []byte) error {
	doc, _, err := OpenAPI()
	if err != nil {
		return fmt.Errorf("openapi document: %w", err)
	}
	ref := doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the document has no schema %q", name)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("%s does not match schema %s: %w", raw, name, err)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
