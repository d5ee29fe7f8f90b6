package exchangetest

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONCreateWithExtendedProperties(t *testing.T) {
	s := newTestServer(t, nil)
	body := map[string]any{
		"subject":    "Quarterly report",
		"body":       map[string]any{"contentType": "text", "content": "numbers"},
		"from":       map[string]any{"emailAddress": map[string]any{"address": "bob@example.com"}},
		"isRead":     false,
		"categories": []string{"Red"},
		"flag":       map[string]any{"flagStatus": "flagged"},
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "1"},
			{"id": "SystemTime 0x0E06", "value": "2023-05-06T07:08:09Z"},
			{"id": "SystemTime 0x0039", "value": "2023-05-06T07:00:00Z"},
			{"id": sourceProp, "value": "INBOX/42/7"},
		},
	}
	r := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", body)
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, false, r.json["isDraft"])
	assert.Equal(t, false, r.json["isRead"], "an explicit isRead wins over the read flag")
	assert.Equal(t, "2023-05-06T07:08:09Z", r.json["receivedDateTime"])
	assert.Equal(t, "2023-05-06T07:00:00Z", r.json["sentDateTime"])
	assert.Equal(t, []any{"Red"}, r.json["categories"])
	id := r.json["id"].(string)
	m, _ := s.Message(alice, id)
	assert.Equal(t, "INBOX/42/7", m.ExtendedProperties[sourceProp])
	assert.Equal(t, "flagged", m.FlagStatus)
	assert.Nil(t, m.MIME)

	// Without PidTagMessageFlags it is a draft.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{"subject": "x"})
	require.Equal(t, 201, r.status)
	assert.Equal(t, true, r.json["isDraft"])

	// $expand the watermark, with another spelling of the id's GUID.
	q := url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq 'String {66F5A359-4659-4830-9070-00047EC6AC6E} Name mailferrySourceId')"}}
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	props := r.json["singleValueExtendedProperties"].([]any)
	require.Len(t, props, 1)
	assert.Equal(t, map[string]any{"id": sourceProp, "value": "INBOX/42/7"}, props[0])

	v := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"/$value", nil, "")
	assert.Contains(t, string(v.raw), "Subject: Quarterly report")
}

func TestCreationOnlyProperties(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{
		"subject": "unread, delivered",
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "0"},
			{"id": "SystemTime 0x0E06", "value": "2021-01-01T00:00:00Z"},
		},
	})
	before, _ := s.Message(alice, id)
	assert.False(t, before.IsDraft)
	assert.False(t, before.IsRead)

	// PATCHing the creation-only properties answers 200 and changes nothing.
	r := doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
		"singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "9"},
			{"id": "SystemTime 0x0E06", "value": "2025-01-01T00:00:00Z"},
			{"id": "SystemTime 0x0039", "value": "2025-01-01T00:00:00Z"},
			{"id": "Integer 0x1081", "value": "104"},
		},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	after, _ := s.Message(alice, id)
	assert.False(t, after.IsDraft)
	assert.False(t, after.IsRead)
	assert.Equal(t, before.ReceivedDateTime, after.ReceivedDateTime)
	assert.Equal(t, before.SentDateTime, after.SentDateTime)
	assert.Equal(t, "0", after.ExtendedProperties["Integer 0x0E07"])
	assert.Equal(t, "2021-01-01T00:00:00Z", after.ExtendedProperties["SystemTime 0x0E06"])
	assert.Equal(t, 104, after.LastVerbExecuted, "PidTagLastVerbExecuted may change")

	r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
		"singleValueExtendedProperties": []map[string]string{{"id": "Integer 0x1081", "value": "reply"}},
	})
	assert.Equal(t, "ErrorInvalidExtendedPropertyValue", r.errCode())
}

func TestNormalizePropID(t *testing.T) {
	assert.Equal(t, normalizePropID("Integer 0x0E07"), normalizePropID("integer 0xe07"))
	assert.Equal(t, normalizePropID("String {AA-BB} Name X"), normalizePropID("string {aa-bb} name X"))
	assert.NotEqual(t, normalizePropID("String {aa-bb} Name X"), normalizePropID("String {aa-bb} Name x"))
}

// TestHonourDeliveryTimePatch checks both readings of a PATCH of
// PidTagMessageDeliveryTime on a delivered message: by default it moves
// nothing; with Options.HonourDeliveryTimePatch it sets receivedDateTime
// (and the property), on an imported message as on a JSON-created one,
// but never on a draft.
func TestHonourDeliveryTimePatch(t *testing.T) {
	patch := func(t *testing.T, s *Server, id, when string) {
		t.Helper()
		r := doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
			"singleValueExtendedProperties": []map[string]string{{"id": "SystemTime 0x0E06", "value": when}},
		})
		require.Equal(t, 200, r.status, string(r.raw))
	}
	for _, honour := range []bool{false, true} {
		s := newTestServer(t, &Options{HonourDeliveryTimePatch: honour})
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(sampleMIME), "text/plain")
		require.Equal(t, 201, r.status, string(r.raw))
		imported := r.json["id"].(string)
		created := newDraft(t, s, map[string]any{"subject": "delivered", "singleValueExtendedProperties": []map[string]string{
			{"id": "Integer 0x0E07", "value": "1"}, {"id": "SystemTime 0x0E06", "value": "2021-01-01T00:00:00Z"},
		}})
		draft := newDraft(t, s, map[string]any{"subject": "a draft"})
		before := map[string]Message{}
		for _, id := range []string{imported, created, draft} {
			before[id], _ = s.Message(alice, id)
			patch(t, s, id, "2001-02-03T04:05:06Z")
		}
		want := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		for _, id := range []string{imported, created} {
			m, _ := s.Message(alice, id)
			if honour {
				assert.Equal(t, want, m.ReceivedDateTime, "honoured: %s", m.Subject)
				assert.Equal(t, "2001-02-03T04:05:06Z", m.ExtendedProperties["SystemTime 0x0E06"])
				g := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?$select=receivedDateTime", nil, "")
				assert.Equal(t, "2001-02-03T04:05:06Z", g.json["receivedDateTime"])
			} else {
				assert.Equal(t, before[id].ReceivedDateTime, m.ReceivedDateTime, "not honoured: %s", m.Subject)
			}
			assert.Equal(t, before[id].SentDateTime, m.SentDateTime)
		}
		d, _ := s.Message(alice, draft)
		assert.Equal(t, before[draft].ReceivedDateTime, d.ReceivedDateTime, "a draft has no delivery time to move (honour %v)", honour)
	}
}
