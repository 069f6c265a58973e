"""The node agent: node facts and the fallback tunnel."""
