package banio

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// banbot's encryption (docs/protocol.md): AES-GCM, key = hex-decoded key string,
// Data = nonce(12) || ciphertext || tag(16), no additional data. Only Data is
// protected; Action and NoEncrypt travel in clear.

const (
	gcmNonceLen = 12
	gcmTagLen   = 16
	gcmOverhead = gcmNonceLen + gcmTagLen
)

// newAEAD validates a hex key and builds its AES-GCM. Unlike banbot it refuses a key
// that is not exactly 16, 24 or 32 bytes of valid hex.
func newAEAD(keyHex string) (cipher.AEAD, error) {
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex: %v", ErrInvalidAESKey, err)
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("%w: %d hex digits, want 32, 48 or 64", ErrInvalidAESKey, len(keyHex))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAESKey, err)
	}
	return cipher.NewGCM(block)
}

// appendSeal appends nonce || Seal(plain) to dst.
func appendSeal(dst []byte, aead cipher.AEAD, plain []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, gcmNonceLen)...)
	nonce := dst[start:]
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	return aead.Seal(dst, nonce, plain, nil)
}

// open decrypts nonce || ciphertext || tag.
func open(aead cipher.AEAD, data []byte) ([]byte, error) {
	if len(data) < gcmOverhead {
		return nil, fmt.Errorf("%w: encrypted data too short (%d bytes)", ErrBadMessage, len(data))
	}
	plain, err := aead.Open(nil, data[:gcmNonceLen], data[gcmNonceLen:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decrypt: %v (wrong AES key?)", ErrBadMessage, err)
	}
	return plain, nil
}
