"""Saved uploads (`/v1/assets`): declare, upload once with a signed PUT, finalize, bind into
project input slots, list and delete."""
