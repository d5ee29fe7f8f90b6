package exchangetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests what a PATCH of a message may change (patch.go,
// followup.go).

// newDelivered creates a message that is not a draft (PidTagMessageFlags
// without MSGFLAG_UNSENT) and returns its id.
func newDelivered(t *testing.T, s *Server, body map[string]any) string {
	t.Helper()
	body["singleValueExtendedProperties"] = []map[string]string{{"id": "Integer 0x0E07", "value": "1"}}
	id := newDraft(t, s, body)
	m, _ := s.Message(alice, id)
	require.False(t, m.IsDraft)
	return id
}

func addr(a string) map[string]any {
	return map[string]any{"emailAddress": map[string]any{"address": a}}
}

func TestPatchOfDeliveredMessage(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDelivered(t, s, map[string]any{
		"subject": "orig", "body": map[string]any{"contentType": "text", "content": "orig"},
		"from": addr("bob@example.com"), "internetMessageId": "<orig@example.com>",
	})
	before := getETag(t, s, id)

	// subject and body: 200, unchanged.
	r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"subject": "new", "body": map[string]any{"contentType": "text", "content": "new"},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "orig", r.json["subject"])
	assert.Equal(t, "orig", r.json["body"].(map[string]any)["content"])

	// from, sender, replyTo, internetMessageId: 400, nothing changes.
	for _, tc := range []struct {
		prop string
		v    any
		msg  string
	}{
		{"from", addr("eve@example.com"), "Message is not draft."},
		{"sender", addr("eve@example.com"), "Message is not draft."},
		{"replyTo", []any{addr("eve@example.com")}, "Message is not draft."},
		{"internetMessageId", "<new@example.com>", "Set action is invalid for property."},
	} {
		before := getETag(t, s, id)
		r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{tc.prop: tc.v, "isRead": false})
		require.Equal(t, 400, r.status, "%s: %s", tc.prop, r.raw)
		assert.Equal(t, "ErrorInvalidPropertySet", r.errCode(), tc.prop)
		assert.Contains(t, string(r.raw), tc.msg, tc.prop)
		assert.Equal(t, before, getETag(t, s, id), "%s: a refused PATCH saves nothing", tc.prop)
	}
	m, _ := s.Message(alice, id)
	assert.True(t, m.IsRead, "the refused PATCHes changed nothing")
	assert.Equal(t, "<orig@example.com>", m.InternetMessageID)

	// toRecipients, ccRecipients, bccRecipients: updatable on any message.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"toRecipients": []any{addr("to@example.com")}, "ccRecipients": []any{addr("cc@example.com")},
		"bccRecipients": []any{addr("bcc@example.com")},
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{addr("to@example.com")}, r.json["toRecipients"])
	assert.Equal(t, []any{addr("cc@example.com")}, r.json["ccRecipients"])
	assert.Equal(t, []any{addr("bcc@example.com")}, r.json["bccRecipients"])
	assert.NotEqual(t, before, r.json["@odata.etag"])
}

func TestPatchOfDraft(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "orig", "from": addr("bob@example.com")})
	r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{
		"subject": "new", "body": map[string]any{"contentType": "html", "content": "<p>new</p>"},
		"from": addr("carol@example.com"), "sender": addr("dave@example.com"),
		"replyTo": []any{addr("reply@example.com")}, "toRecipients": []any{addr("to@example.com")},
		"internetMessageId": "<new@example.com>",
	})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, "new", r.json["subject"])
	assert.Equal(t, "<p>new</p>", r.json["body"].(map[string]any)["content"])
	assert.Equal(t, addr("carol@example.com"), r.json["from"])
	assert.Equal(t, addr("dave@example.com"), r.json["sender"])
	assert.Equal(t, []any{addr("reply@example.com")}, r.json["replyTo"])
	assert.Equal(t, []any{addr("to@example.com")}, r.json["toRecipients"])
	assert.Equal(t, "<new@example.com>", r.json["internetMessageId"])

	// null clears.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"replyTo": nil})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{}, r.json["replyTo"])
}

func TestPatchOfReadOnlyProperties(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "s"})
	for _, p := range []string{
		"bodyPreview", "changeKey", "conversationId", "conversationIndex",
		"createdDateTime", "hasAttachments", "isDraft", "lastModifiedDateTime",
		"parentFolderId", "receivedDateTime", "sentDateTime", "uniqueBody", "webLink",
		"ReceivedDateTime", // names match as the emulator decodes them
	} {
		r := doJSON(t, s, "PATCH", msgPath(id), map[string]any{p: "2020-01-01T00:00:00Z", "isRead": false})
		require.Equal(t, 400, r.status, "%s: %s", p, r.raw)
		assert.Equal(t, "ErrorInvalidPropertySet", r.errCode(), p)
		assert.Contains(t, string(r.raw), "Set action is invalid for property.", p)
	}
	m, _ := s.Message(alice, id)
	assert.True(t, m.IsRead, "no refused PATCH changed isRead")

	// id and @odata annotations, as a message read back carries them, pass.
	r := do(t, s, "GET", msgPath(id)+"?$select=categories", nil, "")
	require.Equal(t, 200, r.status)
	back := r.json
	back["categories"] = []any{"Blue"}
	r = doJSON(t, s, "PATCH", msgPath(id), back)
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{"Blue"}, r.json["categories"])
}

func flagOf(r resp) map[string]any { return r.json["flag"].(map[string]any) }

func dt(d, tz string) map[string]any { return map[string]any{"dateTime": d, "timeZone": tz} }

func TestFlagDates(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDelivered(t, s, map[string]any{"subject": "s"})
	patch := func(flag map[string]any) resp {
		t.Helper()
		return doJSON(t, s, "PATCH", msgPath(id), map[string]any{"flag": flag})
	}

	r := patch(map[string]any{"flagStatus": "flagged",
		"startDateTime": dt("2024-05-01T09:00:00", "Pacific Standard Time"),
		"dueDateTime":   dt("2024-05-03T17:30:00.5", "Pacific Standard Time")})
	require.Equal(t, 200, r.status, string(r.raw))
	want := map[string]any{"flagStatus": "flagged",
		"startDateTime": dt("2024-05-01T09:00:00.0000000", "Pacific Standard Time"),
		"dueDateTime":   dt("2024-05-03T17:30:00.5000000", "Pacific Standard Time")}
	assert.Equal(t, want, flagOf(r))
	assert.Equal(t, want, flagOf(do(t, s, "GET", msgPath(id), nil, "")), "kept")

	// Refused, and nothing changes: a due date without a start date (the
	// followupFlag page), a start date alone, a completion date on a
	// flagged message, dates on complete or notFlagged, a bad dateTime.
	for name, f := range map[string]map[string]any{
		"due alone":          {"flagStatus": "flagged", "dueDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"start alone":        {"flagStatus": "flagged", "startDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"flagged, completed": {"flagStatus": "flagged", "completedDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"complete, start": {"flagStatus": "complete", "startDateTime": dt("2024-05-01T09:00:00", "UTC"),
			"dueDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"notFlagged, completed": {"flagStatus": "notFlagged", "completedDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"bad dateTime": {"flagStatus": "flagged", "startDateTime": dt("May 1st", "UTC"),
			"dueDateTime": dt("2024-05-03T17:00:00", "UTC")},
		"no status, due alone": {"dueDateTime": dt("2024-05-03T17:00:00", "UTC")},
	} {
		r := patch(f)
		require.Equal(t, 400, r.status, "%s: %s", name, r.raw)
		assert.Equal(t, "ErrorInvalidArgument", r.errCode(), name)
		assert.Equal(t, want, flagOf(do(t, s, "GET", msgPath(id), nil, "")), "%s changed nothing", name)
	}

	// An offset converts to UTC; a flag replaces the whole flag.
	r = patch(map[string]any{"flagStatus": "flagged",
		"startDateTime": dt("2024-05-01T10:00:00+02:00", "W. Europe Standard Time"),
		"dueDateTime":   dt("2024-05-02T10:00:00Z", "")})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, map[string]any{"flagStatus": "flagged",
		"startDateTime": dt("2024-05-01T08:00:00.0000000", "UTC"),
		"dueDateTime":   dt("2024-05-02T10:00:00.0000000", "UTC")}, flagOf(r))
	r = patch(map[string]any{"flagStatus": "flagged"})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, map[string]any{"flagStatus": "flagged"}, flagOf(r))

	// complete: the given completion date, else now to the minute.
	r = patch(map[string]any{"flagStatus": "complete", "completedDateTime": dt("2024-05-04T08:00:00", "UTC")})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, map[string]any{"flagStatus": "complete",
		"completedDateTime": dt("2024-05-04T08:00:00.0000000", "UTC")}, flagOf(r))
	before := now().Truncate(time.Minute)
	r = patch(map[string]any{"flagStatus": "complete"})
	require.Equal(t, 200, r.status, string(r.raw))
	c := flagOf(r)["completedDateTime"].(map[string]any)
	assert.Equal(t, "UTC", c["timeZone"])
	done, err := time.Parse(graphDateTime, c["dateTime"].(string))
	require.NoError(t, err, c)
	assert.True(t, !done.Before(before) && !done.After(now()), "completed %v, now %v", done, now())
	assert.Equal(t, done.Truncate(time.Minute), done, "to the minute")

	// notFlagged drops every date; so does a null date.
	r = patch(map[string]any{"flagStatus": "notFlagged"})
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, map[string]any{"flagStatus": "notFlagged"}, flagOf(r))
	r = patch(map[string]any{"flagStatus": "flagged", "completedDateTime": nil})
	require.Equal(t, 200, r.status, string(r.raw))

	// At creation too.
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{
		"flag": map[string]any{"flagStatus": "flagged", "dueDateTime": dt("2024-05-03T17:00:00", "UTC")}})
	assert.Equal(t, 400, r.status, string(r.raw))
	r = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/inbox/messages", map[string]any{
		"flag": map[string]any{"flagStatus": "flagged", "startDateTime": dt("2024-05-01T00:00:00", "UTC"),
			"dueDateTime": dt("2024-05-03T17:00:00", "UTC")}})
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, dt("2024-05-03T17:00:00.0000000", "UTC"), flagOf(r)["dueDateTime"])
}
