# A JSON API that needs only the edge identity: ActionController::API never loads the
# site's session, so these requests leave the session (and its cookie) alone.
class ApiController < ActionController::API
  include EdgeAssertion
  before_action :require_edge_session

  def me
    render json: { user: @edge_user, claims: @edge_claims, source: @edge_source }
  end
end
