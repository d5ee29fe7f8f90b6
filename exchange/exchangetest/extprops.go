package exchangetest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds singleValueExtendedProperties
// (https://learn.microsoft.com/graph/api/resources/extended-properties-overview):
// how their ids compare, and what the ones with a meaning do.

// Extended property tags with a meaning at creation time (MS-OXPROPS).
const (
	tagMessageFlags = "integer 0x0e07"    // PidTagMessageFlags
	tagDeliveryTime = "systemtime 0x0e06" // PidTagMessageDeliveryTime
	tagSubmitTime   = "systemtime 0x0039" // PidTagClientSubmitTime
	tagLastVerb     = "integer 0x1081"    // PidTagLastVerbExecuted (MS-OXOMSG, MS-OXPROPS)
	msgflagRead     = 0x1                 // MSGFLAG_READ
	msgflagUnsent   = 0x8                 // MSGFLAG_UNSENT: the item is a draft
)

// readOnlyAfterSave are the extended properties whose value only the
// creation sets: PidTagMessageFlags is read-only after the first save
// (MS-OXCMSG 2.2.1.6), and the emulator treats the delivery and submit
// times the same way, since no Microsoft page documents that changing them
// moves receivedDateTime or sentDateTime. Options.HonourDeliveryTimePatch
// makes the delivery time of a delivered message writable.
var readOnlyAfterSave = []string{tagMessageFlags, tagDeliveryTime, tagSubmitTime}

// extPropJSON is a singleValueExtendedProperty in a request body.
type extPropJSON struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// propID is an extended property id; it compares by normalizePropID.
type propID string

// normalizePropID canonicalizes an extended property id
// (https://learn.microsoft.com/graph/api/resources/extended-properties-overview#id-formats):
// "{type} {proptag}" or "{type} {guid} Name {name}" or "{type} {guid} Id {id}".
// Type, tag, GUID and the Name/Id keyword are case-insensitive; the name
// itself is case-sensitive
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
func normalizePropID(id string) string {
	f := strings.Fields(id)
	if len(f) < 2 {
		return id
	}
	typ := strings.ToLower(f[0])
	if len(f) == 2 && strings.HasPrefix(strings.ToLower(f[1]), "0x") {
		if n, err := strconv.ParseUint(f[1][2:], 16, 32); err == nil {
			return fmt.Sprintf("%s 0x%04x", typ, n)
		}
	}
	if len(f) >= 4 {
		guid := strings.ToLower(strings.Trim(f[1], "{}"))
		kw := strings.ToLower(f[2])
		rest := strings.Join(f[3:], " ")
		if kw == "id" {
			if n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(rest), "0x"), 16, 32); err == nil {
				rest = fmt.Sprintf("0x%x", n)
			}
		}
		return typ + " {" + guid + "} " + kw + " " + rest
	}
	return strings.ToLower(id)
}

// setProp sets the property id of m to value, replacing the value of the
// same property under any spelling of its id.
func (m *message) setProp(id, value string) {
	key := normalizePropID(id)
	for i, p := range m.props {
		if normalizePropID(p.id) == key {
			m.props[i] = extProp{id: id, value: value}
			return
		}
	}
	m.props = append(m.props, extProp{id: id, value: value})
}

func (m *message) hasProp(key string) bool {
	return slices.ContainsFunc(m.props, func(p extProp) bool { return normalizePropID(p.id) == key })
}

// applyProp applies one singleValueExtendedProperty to m, at creation or
// in a PATCH (see createMessage and patchMessage). A value of a tag above
// that does not parse as the tag's type (an integer, or an RFC 3339 time)
// answers 400 ErrorInvalidExtendedPropertyValue; that code is the
// emulator's own, as no Microsoft page names the error.
//
// A PATCH of PidTagMessageDeliveryTime answers 200 and, by default,
// changes nothing that Graph shows: receivedDateTime stays (and so does
// the property's value when the creation set it; see readOnlyAfterSave).
// With Options.HonourDeliveryTimePatch, a PATCH of it on a delivered
// (non-draft) message sets receivedDateTime and the property's value.
func (s *Server) applyProp(c *call, m *message, p extPropJSON, creating bool) *reply {
	bad := func() *reply {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidExtendedPropertyValue", "The extended property value is not valid for its type.").ref()
	}
	key := normalizePropID(p.ID)
	switch key {
	case tagMessageFlags, tagLastVerb:
		n, err := strconv.ParseInt(strings.TrimSpace(p.Value), 0, 64)
		if err != nil {
			return bad()
		}
		switch {
		case key == tagLastVerb:
			m.lastVerb = int(n)
		case creating:
			m.isDraft = n&msgflagUnsent != 0
			m.isRead = n&msgflagRead != 0
		}
	case tagDeliveryTime, tagSubmitTime:
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(p.Value))
		if err != nil {
			return bad()
		}
		switch {
		case creating && key == tagDeliveryTime:
			m.received = ts.UTC()
		case creating:
			m.sent = ts.UTC()
		case key == tagDeliveryTime && s.opts.HonourDeliveryTimePatch && !m.isDraft:
			m.received = ts.UTC()
			m.setProp(p.ID, p.Value)
			return nil
		}
	}
	if !creating && slices.Contains(readOnlyAfterSave, key) && m.hasProp(key) {
		return nil // accepted, and the value of the creation stays
	}
	m.setProp(p.ID, p.Value)
	return nil
}
