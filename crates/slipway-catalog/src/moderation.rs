//! The submission state machine: the moves a listing may make and who makes each. The
//! catalog service asks it which move a request is, the permission policy whether the
//! actor may make it, and the database makes it only from the status that was read.
//!
//! ```text
//! draft, changes_requested, unpublished -> submitted            the publisher submits
//! submitted -> in_review -> approved -> published              a moderator reviews and approves
//! submitted, in_review -> changes_requested                    and the publisher submits again
//! submitted, in_review -> draft                                the publisher withdraws, or a moderator rejects
//! published, on_hold -> unpublished                            the publisher (or a moderator) withdraws it
//! published <-> on_hold                                        a moderator, or the deadline sweep
//! published, on_hold, unpublished -> revoked                   final
//! ```

use slipway_policy::Action;

use crate::model::ListingStatus::{self, *};

/// One allowed move: from any of `from` to `to`, by an actor whom the policy allows
/// `action` on the listing.
#[derive(Debug)]
pub(crate) struct Move {
    pub from: &'static [ListingStatus],
    pub to: ListingStatus,
    pub action: Action,
    /// Moves that send the publisher back to work, or take its product from customers,
    /// say why.
    pub needs_message: bool,
    /// What the move is, for the thread and the mail: "requested changes".
    pub what: &'static str,
    /// What a button making it says: "Request changes".
    pub label: &'static str,
}

const fn mv(
    from: &'static [ListingStatus],
    to: ListingStatus,
    action: Action,
    needs_message: bool,
    what: &'static str,
    label: &'static str,
) -> Move {
    Move { from, to, action, needs_message, what, label }
}

/// A move the viewer may make now, as a page offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveOption {
    pub to: ListingStatus,
    pub label: &'static str,
    pub needs_message: bool,
}

/// Every move, a publisher's own before a moderator's where both lead to the same status:
/// a member of the publisher who is also a moderator withdraws its submission rather than
/// rejecting it.
pub(crate) const MOVES: &[Move] = &[
    mv(&[Draft, ChangesRequested, Unpublished], Submitted, Action::EditListing, false, "submitted", "Submit for review"),
    mv(&[Submitted, InReview], Draft, Action::EditListing, false, "withdrew the submission", "Withdraw the submission"),
    mv(&[Submitted, InReview], Draft, Action::Moderate, true, "rejected the submission", "Reject"),
    mv(&[Submitted], InReview, Action::Moderate, false, "started the review", "Start the review"),
    mv(&[Submitted, InReview], ChangesRequested, Action::Moderate, true, "requested changes", "Request changes"),
    mv(&[Submitted, InReview], Approved, Action::Approve, false, "approved", "Approve"),
    mv(&[Approved], Published, Action::EditListing, false, "published", "Publish"),
    mv(&[Approved], Published, Action::Approve, false, "published", "Publish"),
    mv(&[Published, OnHold], Unpublished, Action::EditListing, false, "unpublished", "Unpublish"),
    mv(&[Published, OnHold], Unpublished, Action::Moderate, true, "withdrew the product from the store", "Withdraw from the store"),
    mv(&[Published], OnHold, Action::Moderate, true, "put the product on hold", "Put on hold"),
    mv(&[OnHold], Published, Action::Moderate, false, "lifted the hold", "Lift the hold"),
    mv(&[Published, OnHold, Unpublished], Revoked, Action::Moderate, true, "revoked the product", "Revoke"),
];

/// The moves that take a listing from `from` to `to`, in order of preference.
pub(crate) fn moves(from: ListingStatus, to: ListingStatus) -> impl Iterator<Item = &'static Move> {
    MOVES.iter().filter(move |m| m.to == to && m.from.contains(&from))
}

/// The statuses a revision of a live listing moves through; approving it applies it.
pub(crate) const REVISION_STATUSES: [ListingStatus; 5] = [Draft, Submitted, InReview, ChangesRequested, Approved];

/// The moves from `from` that `allowed` admits, one per target status, in the machine's
/// order (for a revision, only those among `REVISION_STATUSES`).
pub(crate) fn options(from: ListingStatus, revision: bool, allowed: impl Fn(Action) -> bool) -> Vec<MoveOption> {
    let mut out: Vec<MoveOption> = Vec::new();
    for m in MOVES.iter().filter(|m| m.from.contains(&from) && (!revision || REVISION_STATUSES.contains(&m.to))) {
        if allowed(m.action) && !out.iter().any(|o| o.to == m.to) {
            out.push(MoveOption { to: m.to, label: m.label, needs_message: m.needs_message });
        }
    }
    out
}

/// The longest message a move or a thread takes.
pub(crate) const MAX_MESSAGE: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status can be reached and every one but `revoked` left; no move stays where
    /// it is.
    #[test]
    fn the_machine_connects_every_status_and_revoked_is_final() {
        for status in ListingStatus::ALL.iter().copied() {
            let leaves = MOVES.iter().any(|m| m.from.contains(&status));
            assert_eq!(leaves, status != Revoked, "{status} can be left");
            assert!(MOVES.iter().any(|m| m.to == status), "{status} can be reached");
        }
        assert!(MOVES.iter().all(|m| !m.from.contains(&m.to)), "a move changes the status");
    }

    /// Only moderators approve, and a publisher cannot skip review: no publisher move
    /// goes to `approved`, and `published` is reached by a publisher only from `approved`.
    #[test]
    fn publishers_cannot_skip_review() {
        for m in MOVES.iter().filter(|m| m.action == Action::EditListing) {
            assert_ne!(m.to, Approved);
            assert!(m.to != Published || m.from == [Approved], "{m:?}");
            assert!(!m.to.is_live() || m.from == [Approved], "{m:?}");
        }
        let into_store: Vec<_> = MOVES.iter().filter(|m| m.to.is_live() && !m.from.iter().all(|f| f.is_live())).collect();
        assert!(into_store.iter().all(|m| m.from == [Approved]), "only an approved listing enters the store: {into_store:?}");
        assert_eq!(moves(Draft, Published).count(), 0);
        assert_eq!(moves(Submitted, Draft).map(|m| m.action).collect::<Vec<_>>(), [Action::EditListing, Action::Moderate]);
    }
}
