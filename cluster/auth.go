package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
)

// With a shared key (Config.SharedKeyFile) every message a node sends ends
// in a tag: HMAC-SHA-256, under the key, of the subject it is sent to, a
// zero byte and the message before the tag. Binding the subject means a
// recorded message cannot be replayed elsewhere: a catch-up chunk goes to
// the asker's one-time inbox, so it is good for that catch-up only. Only
// the empty acknowledgements of a catch-up stream carry no tag; forging one
// merely lets the stream run ahead of the asker.
const tagLen = sha256.Size

func (n *Node) appendTag(dst []byte, subject string, msg []byte) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(dst)
}

// seal appends msg's tag for subject to msg; without a shared key it
// returns msg as it is.
func (n *Node) seal(subject string, msg []byte) []byte {
	if n.key == nil {
		return msg
	}
	return n.appendTag(msg, subject, msg)
}

// open returns msg without its tag, or false, counted, if the tag is
// missing or wrong; without a shared key it returns msg as it is.
func (n *Node) open(subject string, msg []byte) ([]byte, bool) {
	if n.key == nil {
		return msg, true
	}
	body := msg[:max(len(msg)-tagLen, 0)]
	var want [tagLen]byte
	if len(msg) < tagLen || !hmac.Equal(n.appendTag(want[:0], subject, body), msg[len(body):]) {
		n.unauthenticated.Add(1)
		return nil, false
	}
	return body, true
}
