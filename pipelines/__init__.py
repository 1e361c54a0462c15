"""presence.pipelines."""
