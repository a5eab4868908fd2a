"""Media routes: asset downloads (signed or with a key), direct uploads, and the Sogni SDK's
upload/download URL flow."""
