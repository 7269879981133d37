package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"herald/bans"
)

// openAPIDoc is the part of an OpenAPI 3 document the test reads.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		RequestBody *struct {
			Content map[string]struct{ Schema schemaRef } `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]struct{ Schema schemaRef } `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type schemaRef struct {
	Ref string `json:"$ref"`
}

// The document served at /openapi.json is the one checked in
// (admin/openapi.json), and it describes exactly the routes the API
// answers: each route's path and method, its status codes, and the JSON
// fields of its body and reply, which must be those of the Go types the
// route decodes and writes. A route added, removed or changed without the
// document fails here.
func TestOpenAPIDescribesTheRoutes(t *testing.T) {
	s, err := New(Config{Token: strings.Repeat("t", MinTokenLen), Bans: must(bans.New(bans.Config{}))})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", MinTokenLen))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || string(rec.Body.Bytes()) != string(openAPI) {
		t.Fatalf("GET /openapi.json: status %d, and not the checked-in document", rec.Code)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, rt := range s.routes {
		path := strings.ReplaceAll(rt.path, "...}", "}")
		key := rt.method + " " + path
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		delete(documented, key)
		op := doc.Paths[path][strings.ToLower(rt.method)]
		if _, ok := op.Responses["401"]; !ok {
			t.Errorf("%s: no 401 response documented", key)
		}
		if rt.body != nil {
			if op.RequestBody == nil {
				t.Errorf("%s: no request body documented", key)
			} else {
				checkSchema(t, key+" body", doc, op.RequestBody.Content["application/json"].Schema, rt.body)
			}
			for _, code := range []string{"400", "413"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: takes a body, but no %s response documented", key, code)
				}
			}
		} else if op.RequestBody != nil {
			t.Errorf("%s: documents a body it does not take", key)
		}
		if rt.reply != nil {
			var ok []string
			for code, r := range op.Responses {
				if n, _ := strconv.Atoi(code); n >= 200 && n < 300 {
					ok = append(ok, code)
					checkSchema(t, key+" reply "+code, doc, r.Content["application/json"].Schema, rt.reply)
				}
			}
			if len(ok) != 1 {
				t.Errorf("%s: success responses %v, want one", key, ok)
			}
		}
	}
	for key := range documented {
		t.Errorf("openapi.json documents %s, which the API does not answer", key)
	}
}

// checkSchema checks that the component ref points to lists exactly the
// JSON fields of v's type.
func checkSchema(t *testing.T, what string, doc openAPIDoc, ref schemaRef, v any) {
	t.Helper()
	name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/")
	schema, found := doc.Components.Schemas[name]
	if !ok || !found {
		t.Errorf("%s: schema %q is not a component", what, ref.Ref)
		return
	}
	var documented, fields []string
	for p := range schema.Properties {
		documented = append(documented, p)
	}
	typ := reflect.TypeOf(v)
	for _, f := range reflect.VisibleFields(typ) {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && !f.Anonymous && tag != "-" {
			fields = append(fields, tag)
		}
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Errorf("%s: %s documents fields %v, the Go type %s has %v", what, name, documented, typ, fields)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
