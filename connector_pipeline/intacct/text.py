"""Text that is safe to put into XML 1.0 (the rule lives in `connector_pipeline.xml_chars`,
shared with the mappings)."""

from connector_pipeline.xml_chars import sanitize_xml_text

__all__ = ["sanitize_xml_text"]
