"""Code shared by the homeserver and the client: identifiers, errors, JSON types, crypto."""
