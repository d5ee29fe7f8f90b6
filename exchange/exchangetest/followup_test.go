package exchangetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests the follow-up flag of a message and its dates
// (followup.go).

func flagOf(r resp) map[string]any { return r.json["flag"].(map[string]any) }

func dt(d, tz string) map[string]any { return map[string]any{"dateTime": d, "timeZone": tz} }

// TestFlagDates: flagStatus and the start, due and completion dates, by
// the FlagType rules that followup.go cites.
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
