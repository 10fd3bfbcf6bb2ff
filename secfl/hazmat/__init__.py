"""Raw primitives: correct and fast, not misuse-resistant by themselves.

Like ``cryptography.hazmat``: use these only if you know why. Protocol code in
:mod:`secfl.protocols` composes them into something safe.
"""
