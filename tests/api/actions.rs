//! "You said, we did" and replies to anonymous comments (issue 8, item 4).
