package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// schemaBody is the body of PUT …/properties/{id} and …/questions/{id}.
type schemaBody struct {
	Kind    string         `json:"kind"`
	Spot    string         `json:"spot"`
	ID      string         `json:"id"`
	Label   string         `json:"label"`
	Type    rule.ValueType `json:"type"`
	Options []rule.Option  `json:"options"`
}

func schemaKey(spot, kind, id string) string { return spot + "/" + kind + "/" + id }

func (a *API) lookupSchema(spot, kind, id string) (rule.Schema, bool) {
	var s rule.Schema
	var ok bool
	a.eng.ViewDefs(func(d *engine.Defs) {
		var p *rule.Schema
		if kind == "question" {
			p, ok = d.Question(spot, id)
		} else {
			p, ok = d.Property(spot, id)
		}
		if ok {
			s = *p
		}
	})
	return s, ok
}

func (a *API) listSchemas(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
		spot := r.PathValue("spot")
		limit, after, e := idPage(r)
		if e != nil {
			return e
		}
		var items []rule.Schema
		a.eng.ViewDefs(func(d *engine.Defs) {
			sd := d.Spot(spot)
			if sd == nil {
				return
			}
			m := sd.Properties
			if kind == "question" {
				m = sd.Questions
			}
			for id, s := range m {
				if id > after {
					items = append(items, *s)
				}
			}
		})
		slices.SortFunc(items, func(a, b rule.Schema) int { return strings.Compare(a.ID, b.ID) })
		out := listResponse[rule.Schema]{Items: []rule.Schema{}}
		if len(items) > limit {
			items = items[:limit]
			out.NextCursor = encodeCursor(items[limit-1].ID)
		}
		out.Items = append(out.Items, items...)
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (a *API) getSchema(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
		spot, id := r.PathValue("spot"), r.PathValue("id")
		s, ok := a.lookupSchema(spot, kind, id)
		if !ok {
			return errorf(http.StatusNotFound, CodeSchemaNotFound, "%s %q is not declared in spot %q", kind, id, spot)
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	}
}

// putSchema declares or redeclares a property or question. A change that
// removes an option a smart group names, or changes the type of a
// referenced schema, is refused with 409 and the referencing groups.
func (a *API) putSchema(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
		spot, id := r.PathValue("spot"), r.PathValue("id")
		var body schemaBody
		if e := decodeBody(r, &body); e != nil {
			return e
		}
		switch {
		case body.Kind != "" && body.Kind != kind:
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "kind must be %q (or absent), not %q", kind, body.Kind)
		case body.Spot != "" && body.Spot != spot:
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "spot %q in the body does not match spot %q of the path", body.Spot, spot)
		case body.ID != "" && body.ID != id:
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "id %q in the body does not match id %q of the path", body.ID, id)
		case body.Type == "":
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "type is required: text, number, date, boolean, single_select or multi_select")
		}
		value, err := json.Marshal(rule.Schema{Kind: kind, Spot: spot, ID: id, Label: body.Label, Type: body.Type,
			Options: body.Options, TS: a.nowTS()})
		if err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "%v", err)
		}
		a.writeMu.Lock()
		defer a.writeMu.Unlock()
		old, existed := a.lookupSchema(spot, kind, id)
		key := schemaKey(spot, kind, id)
		if re := a.eng.CheckDefinition(key, value); re != nil {
			e := fromRecordError(re)
			if re.Code == engine.CodeReferenced {
				e = e.with("groups", a.schemaRefs(spot, kind, id, &old, body))
			}
			return e
		}
		if _, e := a.write(r.Context(), key, value); e != nil {
			return e
		}
		s, _ := a.lookupSchema(spot, kind, id)
		status := http.StatusCreated
		if existed {
			status = http.StatusOK
		}
		writeJSON(w, status, s)
		return nil
	}
}

// schemaRefs lists the smart groups that block a schema change: those
// naming a removed option, or all those reading the schema.
func (a *API) schemaRefs(spot, kind, id string, old *rule.Schema, body schemaBody) []string {
	return a.refs(spot, func(sd *engine.SpotDefs) []string {
		if old.Type == body.Type {
			set := map[string]bool{}
			for _, o := range old.Options {
				kept := false
				for _, n := range body.Options {
					kept = kept || n.ID == o.ID
				}
				if !kept {
					for _, g := range sd.ReferencingOption(kind, id, o.ID) {
						set[g] = true
					}
				}
			}
			if len(set) > 0 {
				return slices.Sorted(maps.Keys(set))
			}
		}
		return sd.ReferencingSchema(kind, id)
	})
}

func (a *API) deleteSchema(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
		spot, id := r.PathValue("spot"), r.PathValue("id")
		a.writeMu.Lock()
		defer a.writeMu.Unlock()
		if _, ok := a.lookupSchema(spot, kind, id); !ok {
			return errorf(http.StatusNotFound, CodeSchemaNotFound, "%s %q is not declared in spot %q", kind, id, spot)
		}
		key := schemaKey(spot, kind, id)
		if re := a.eng.CheckDefinition(key, nil); re != nil {
			e := fromRecordError(re)
			if re.Code == engine.CodeReferenced {
				e = e.with("groups", a.refs(spot, func(sd *engine.SpotDefs) []string { return sd.ReferencingSchema(kind, id) }))
			}
			return e
		}
		if _, e := a.write(r.Context(), key, nil); e != nil {
			return e
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// references answers GET /v1/spots/{spot}/references with exactly one of
// tag, property, question or group; option narrows property or question
// to one of its options.
func (a *API) references(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot := r.PathValue("spot")
	q := r.URL.Query()
	var given []string
	for _, k := range []string{"tag", "property", "question", "group"} {
		if q.Has(k) {
			given = append(given, k)
		}
	}
	if len(given) != 1 {
		got := "none"
		if len(given) > 0 {
			got = strings.Join(given, ", ")
		}
		return errorf(http.StatusBadRequest, CodeInvalidRequest,
			"give exactly one of the query parameters tag, property, question or group (option goes with property or question); got %s", got)
	}
	what, v, option := given[0], q.Get(given[0]), q.Get("option")
	if v == "" {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "%s must not be empty", what)
	}
	if q.Has("option") && what != "property" && what != "question" {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "option names an option of a property or question: give it with property= or question=")
	}
	ids := a.refs(spot, func(sd *engine.SpotDefs) []string {
		switch what {
		case "tag":
			return sd.ReferencingTag(v)
		case "group":
			return sd.ReferencingGroups(v)
		}
		if option != "" {
			return sd.ReferencingOption(what, v, option)
		}
		return sd.ReferencingSchema(what, v)
	})
	writeJSON(w, http.StatusOK, listResponse[groupRef]{Items: a.groupRefs(spot, ids)})
	return nil
}
