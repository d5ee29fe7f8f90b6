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

// Extended property tags with a meaning at creation time (MS-OXPROPS),
// as normalizePropID keys them.
const (
	tagMessageFlags = "integer 0xe07"    // PidTagMessageFlags
	tagDeliveryTime = "systemtime 0xe06" // PidTagMessageDeliveryTime
	tagSubmitTime   = "systemtime 0x39"  // PidTagClientSubmitTime
	tagLastVerb     = "integer 0x1081"   // PidTagLastVerbExecuted (MS-OXOMSG, MS-OXPROPS)
	msgflagRead     = 0x1                // MSGFLAG_READ
	msgflagUnsent   = 0x8                // MSGFLAG_UNSENT: the item is a draft
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

// mapiTypes are the MapiPropertyType names an extended property id starts
// with, as Graph spells them
// (https://learn.microsoft.com/graph/api/resources/extended-properties-overview#id-formats).
var mapiTypes = []string{
	"ApplicationTime", "ApplicationTimeArray", "Binary", "BinaryArray", "Boolean",
	"CLSID", "CLSIDArray", "Currency", "CurrencyArray", "Double", "DoubleArray",
	"Error", "Float", "FloatArray", "Integer", "IntegerArray", "Long", "LongArray",
	"Null", "Object", "ObjectArray", "Short", "ShortArray", "SystemTime",
	"SystemTimeArray", "String", "StringArray",
}

// canonicalPropID spells an extended property id as Graph answers it,
// whatever spelling the client created or asked for it with: the type as
// Graph names it, a tag or an Id as lower-case hex without leading zeros,
// the GUID in lower case within braces, the keywords Name and Id so
// capitalized, the name as it was given. For example "integer 0x0E07" is
// "Integer 0xe07" and "String {00020386-0000-0000-C000-000000000046} name
// X-Foo" is "String {00020386-0000-0000-c000-000000000046} Name X-Foo".
//
// Sources: Graph answered a request for 'Integer
// {11000E07-B51B-40D6-AF21-CAA85EDAB1D0} Id 0x0027' with an id other than
// the one asked for
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/2251),
// and the property, read back, is "Integer
// {11000e07-b51b-40d6-af21-caa85edab1d0} Id 0x27" (shown in a 2025 report
// on Outlook's event charms); the tag form "String 0x7d" for
// PR_TRANSPORT_MESSAGE_HEADERS (0x007D) appears in Graph answers quoted
// by integrations, and DavMail, which compares the ids of Graph's answers
// as exact strings, spells them so ("Integer 0xe07", "SystemTime 0xe06",
// "Integer {00062008-0000-0000-c000-000000000046} Id 0x8570";
// https://github.com/mguessan/davmail/blob/master/src/java/davmail/exchange/graph/GraphField.java).
// An id that is in none of the three formats is returned as given.
func canonicalPropID(id string) string {
	p, ok := parsePropID(id)
	if !ok {
		return id
	}
	typ := p.typ
	for _, t := range mapiTypes {
		if strings.EqualFold(t, typ) {
			typ = t
			break
		}
	}
	switch {
	case p.guid == "":
		return fmt.Sprintf("%s 0x%x", typ, p.num)
	case p.named:
		return typ + " {" + p.guid + "} Name " + p.name
	default:
		return fmt.Sprintf("%s {%s} Id 0x%x", typ, p.guid, p.num)
	}
}

// normalizePropID keys an extended property id
// (https://learn.microsoft.com/graph/api/resources/extended-properties-overview#id-formats):
// "{type} {proptag}" or "{type} {guid} Name {name}" or "{type} {guid} Id {id}".
// Type, tag, GUID, the Name/Id keyword and the Id are case-insensitive
// and leading zeros do not count (see canonicalPropID); the name itself is
// case-sensitive
// (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get).
// Two ids name the same property when their keys are equal.
func normalizePropID(id string) string {
	p, ok := parsePropID(id)
	if !ok {
		return strings.ToLower(strings.Join(strings.Fields(id), " "))
	}
	typ := strings.ToLower(p.typ)
	switch {
	case p.guid == "":
		return fmt.Sprintf("%s 0x%x", typ, p.num)
	case p.named:
		return typ + " {" + p.guid + "} name " + p.name
	default:
		return fmt.Sprintf("%s {%s} id 0x%x", typ, p.guid, p.num)
	}
}

// parsedPropID is an extended property id in one of its three formats:
// a tag (guid ""), a GUID and a name (named), or a GUID and an Id.
type parsedPropID struct {
	typ, guid, name string
	named           bool
	num             uint64
}

// parsePropID reads an id in one of the three formats; ok is false for
// anything else. The GUID is returned in lower case, without braces.
func parsePropID(id string) (parsedPropID, bool) {
	f := strings.Fields(id)
	hex := func(s string) (uint64, bool) {
		l := strings.ToLower(s)
		if !strings.HasPrefix(l, "0x") {
			return 0, false
		}
		n, err := strconv.ParseUint(l[2:], 16, 32)
		return n, err == nil
	}
	switch {
	case len(f) == 2:
		n, ok := hex(f[1])
		return parsedPropID{typ: f[0], num: n}, ok
	case len(f) >= 4:
		guid := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(f[1], "{"), "}"))
		if guid == "" {
			return parsedPropID{}, false
		}
		p := parsedPropID{typ: f[0], guid: guid}
		switch strings.ToLower(f[2]) {
		case "name":
			// The name runs to the end of the id.
			p.named, p.name = true, strings.Join(f[3:], " ")
			return p, true
		case "id":
			n, ok := hex(f[3])
			p.num = n
			return p, ok && len(f) == 4
		}
	}
	return parsedPropID{}, false
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
