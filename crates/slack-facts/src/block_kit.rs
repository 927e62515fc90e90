//! Block Kit limits, as Slack documents and enforces them (a message or view over a limit is
//! refused with `invalid_blocks` / `invalid_arguments`). Counts are in characters.

/// Blocks in one message.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Blocks in one modal or App Home view.
pub const MAX_VIEW_BLOCKS: usize = 100;
/// `block_id`, `action_id`, `callback_id`, `external_id`.
pub const MAX_ID: usize = 255;
/// All `markdown` blocks of one message together.
pub const MAX_MARKDOWN_TOTAL: usize = 12_000;
/// A section's text; also a message's top-level `text` as pulseloop renders it.
pub const SECTION_TEXT_MAX: usize = 3000;
/// A section field.
pub const SECTION_FIELD_MAX: usize = 2000;
/// Fields in one section.
pub const MAX_SECTION_FIELDS: usize = 10;
/// A header block's text.
pub const HEADER_TEXT_MAX: usize = 150;
/// A button's label.
pub const BUTTON_TEXT_MAX: usize = 75;
/// A button's `value`.
pub const BUTTON_VALUE_MAX: usize = 2000;
/// An option's text.
pub const OPTION_TEXT_MAX: usize = 75;
/// Options in a select menu.
pub const MAX_SELECT_OPTIONS: usize = 100;
/// Options in radio buttons or checkboxes.
pub const MAX_RADIO_OPTIONS: usize = 10;
/// Elements in an actions block.
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
/// Elements in a context block.
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
/// An input block's label and hint.
pub const LABEL_MAX: usize = 2000;
/// A context element's text.
pub const CONTEXT_TEXT_MAX: usize = 3000;
/// A modal's title, submit and close labels.
pub const MODAL_TITLE_MAX: usize = 24;
/// A view's `private_metadata`.
pub const PRIVATE_METADATA_MAX: usize = 3000;
/// A plain-text input's `max_length` and `initial_value`.
pub const PLAIN_TEXT_INPUT_MAX: usize = 3000;
/// URLs (image, button, video).
pub const URL_MAX: usize = 3000;
/// An image's `alt_text`.
pub const ALT_TEXT_MAX: usize = 2000;
