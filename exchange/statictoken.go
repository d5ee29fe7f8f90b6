package exchange

import (
	"context"
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// StaticToken returns a credential that always presents token, for an
// access token obtained elsewhere (valid for about an hour) or for the
// exchangetest emulator, which accepts any token. Real migrations use
// azidentity's credentials, which renew their tokens.
func StaticToken(token string) azcore.TokenCredential { return staticToken(token) }

type staticToken string

// GetToken implements azcore.TokenCredential.
func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if s == "" {
		return azcore.AccessToken{}, errors.New("exchange: empty static token")
	}
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}
