package exchangetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPagingOptions(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice + "/mailFolders"
	for _, q := range []string{"$top=-1", "$top=x", "$skip=-2"} {
		r := do(t, s, "GET", base+"?"+q, nil, "")
		assert.Equal(t, 400, r.status, q)
		assert.Equal(t, "BadRequest", r.errCode(), q)
	}
	r := do(t, s, "GET", base+"?$top=2&$skip=7&$count=true&$select=displayName", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.EqualValues(t, 8, r.json["@odata.count"])
	require.Len(t, values(r), 1)
	assert.Equal(t, "Conversation History", values(r)[0]["displayName"])
	assert.NotContains(t, values(r)[0], "parentFolderId", "$select")
	assert.Contains(t, values(r)[0], "id", "id is always there")
	assert.Nil(t, r.json["@odata.nextLink"])

	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages?$expand="+"singleValueExtendedProperties($filter=id%20eq)", nil, "")
	assert.Equal(t, 400, r.status)
}

func TestSplitTopLevel(t *testing.T) {
	assert.Equal(t, []string{"a", "b(c,d)", "e('f,g')"}, splitTopLevel("a,b(c,d),e('f,g')", ','))
	assert.Nil(t, splitTopLevel("", ','))
}
